"""Fault injection: a run killed while writing, a damaged checkpoint, a full disk, a NaN loss, a second
writer, Ctrl-C. Each time nothing is lost, and where a continuation is possible it is exact (the same weights
as a run that never stopped)."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from convbert.errors import CheckpointError, ConfigError, TrainingDiverged
from convbert.train import checkpoint as checkpoint_module
from convbert.train.checkpoint import checkpoint_damage, checkpoints
from convbert.train.cli import compose_config
from convbert.train.history import History
from convbert.train.job import run
from convbert.train.loop import Interrupted, ctrl_c_stops_after_the_step
from convbert.train.run_lock import run_dir_lock
from convbert.train.tasks.sequence_classification import SequenceClassification

TINY = ["model.num_layers=1", "model.hidden_size=32", "model.num_heads=2", "model.intermediate_size=64",
        "model.embedding_size=16", "trainer.batch_size=4", "trainer.progress=false", "trainer.log_every=1",
        "data.max_length=32", "data.max_examples=24", "data.max_dev_examples=8", "pretrain=none",
        "trainer.max_steps=6", "trainer.save_every=2"]


class Killed(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing on the way up handles it."""


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    from convbert.interop.files import load_state_dict_dir

    return load_state_dict_dir(run_dir / "model")[0]


def train_steps(run_dir: Path) -> list[int]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["step"] for r in records if r["split"] == "train"]


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> dict[str, torch.Tensor]:
    """The weights of the run that never stopped."""
    run_dir = tmp_path_factory.mktemp("straight")
    run(compose_config(TINY), run_dir)
    return weights(run_dir)


def assert_exact_continuation(run_dir: Path, straight: dict[str, torch.Tensor]) -> None:
    resumed = weights(run_dir)
    assert resumed.keys() == straight.keys()
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=1e-6, msg=key)
    assert train_steps(run_dir) == [1, 2, 3, 4, 5, 6], "each step logged once"


def fail_on_save(monkeypatch, at_call: int, error: BaseException) -> None:
    """Make the ``at_call``-th safetensors write of a checkpoint raise ``error`` (half the files written)."""
    calls = []
    original = checkpoint_module.save_file

    def save_file(tensors, filename, *args, **kwargs):
        calls.append(filename)
        if len(calls) == at_call:
            Path(filename).write_bytes(b"\0" * 100)  # the half-written file the crash leaves behind
            raise error
        return original(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module, "save_file", save_file)


def test_killed_while_writing_a_checkpoint_resumes_from_the_one_before(tmp_path, monkeypatch, straight):
    fail_on_save(monkeypatch, at_call=5, error=Killed())  # 3 files per checkpoint: the model of step 4
    with pytest.raises(Killed):
        run(compose_config(TINY), tmp_path)
    directory = tmp_path / "checkpoints" / "task"
    assert [p.name for p in checkpoints(directory)] == ["step-000002"]  # the half one is not a checkpoint
    monkeypatch.undo()
    run(compose_config([*TINY, "resume=true"]), tmp_path)
    assert_exact_continuation(tmp_path, straight)


@pytest.mark.parametrize("damage", ["truncate", "flip_a_bit", "delete"])
@pytest.mark.parametrize("file", ["model.safetensors", "optimizer.safetensors", "state.json"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path, straight, caplog, damage, file):
    run(compose_config([*TINY, "trainer.stop_after=4"]), tmp_path)
    newest = tmp_path / "checkpoints" / "task" / "step-000004"
    target = newest / file
    data = bytearray(target.read_bytes())
    if damage == "truncate":
        target.write_bytes(data[: len(data) // 2])
    elif damage == "flip_a_bit":
        data[len(data) * 2 // 3] ^= 0x10
        target.write_bytes(bytes(data))
    else:
        target.unlink()
    assert file in checkpoint_damage(newest)
    with caplog.at_level(logging.WARNING, logger="convbert.train"):
        run(compose_config([*TINY, "resume=true"]), tmp_path)
    assert "skipping damaged checkpoint" in caplog.text and file in caplog.text
    assert "resuming from step-000002" in caplog.text
    assert_exact_continuation(tmp_path, straight)


def test_no_intact_checkpoint_names_the_damage_and_how_to_start_over(tmp_path):
    run(compose_config([*TINY, "trainer.stop_after=4"]), tmp_path)
    for path in checkpoints(tmp_path / "checkpoints" / "task"):
        (path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"no intact checkpoint.*step-000004/model.safetensors has 7 "
                                              r"bytes.*Start over with resume=false"):
        run(compose_config([*TINY, "resume=true"]), tmp_path)


def test_a_checkpoint_from_before_manifests_still_resumes(tmp_path, straight):
    run(compose_config([*TINY, "trainer.stop_after=4"]), tmp_path)
    for path in checkpoints(tmp_path / "checkpoints" / "task"):
        (path / "manifest.json").unlink()
    run(compose_config([*TINY, "resume=true"]), tmp_path)
    assert_exact_continuation(tmp_path, straight)


def test_a_full_disk_keeps_the_previous_checkpoint_and_says_so(tmp_path, monkeypatch, straight):
    fail_on_save(monkeypatch, at_call=6, error=OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(CheckpointError, match=r"could not write checkpoint step-000004.*No space left.*"
                                              r"step-000002 is intact\. Free some space.*resume=true"):
        run(compose_config(TINY), tmp_path)
    directory = tmp_path / "checkpoints" / "task"
    assert sorted(p.name for p in directory.iterdir()) == ["step-000002"]  # no half-written directory
    monkeypatch.undo()
    run(compose_config([*TINY, "resume=true"]), tmp_path)
    assert_exact_continuation(tmp_path, straight)


def test_a_nan_loss_stops_with_an_error_naming_the_step_and_keeps_the_checkpoints(tmp_path, monkeypatch):
    calls = []
    original = SequenceClassification.loss

    def loss(self, module, batch, rng):
        value, logs = original(self, module, batch, rng)
        calls.append(1)
        return (value * float("nan") if len(calls) == 5 else value), logs

    monkeypatch.setattr(SequenceClassification, "loss", loss)
    with pytest.raises(TrainingDiverged, match=r"task stage: the training loss became nan at step 5.*"
                                               r"learning_rate"):
        run(compose_config(TINY), tmp_path, fail_on_divergence=True)
    directory = tmp_path / "checkpoints" / "task"
    assert [p.name for p in checkpoints(directory)] == ["step-000002", "step-000004"]
    assert all(checkpoint_damage(p) is None for p in checkpoints(directory))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["learned"] is False and "step 5" in summary["reason"]
    assert all(torch.isfinite(v).all() for v in weights(tmp_path).values())  # the weights of step 4


def test_a_second_process_on_the_same_run_directory_is_refused(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from convbert.train.run_lock import run_dir_lock\n"
         "with run_dir_lock(Path(sys.argv[1])):\n print('locked', flush=True); time.sleep(60)",
         str(tmp_path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ConfigError, match=rf"being written by another convbert-train process \(pid "
                                              rf"{holder.pid}\).*resume=true"):
            run(compose_config(TINY), tmp_path)
        assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "metrics.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()
    run(compose_config(TINY), tmp_path)  # the lock died with its process
    # in one process, a second holder is refused too
    with run_dir_lock(tmp_path), pytest.raises(ConfigError, match="another convbert-train"):
        run(compose_config([*TINY, "resume=true"]), tmp_path)


def test_ctrl_c_writes_a_checkpoint_and_resume_continues_exactly(tmp_path, monkeypatch, straight, capsys):
    original = History.append

    def append(self, record):
        original(self, record)
        if record["split"] == "train" and record["step"] == 3:
            signal.raise_signal(signal.SIGINT)  # the user presses Ctrl-C during step 3's bookkeeping

    monkeypatch.setattr(History, "append", append)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (not nohup)
    try:
        with pytest.raises(Interrupted) as stop:
            run(compose_config(TINY), tmp_path)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back
    finally:
        signal.signal(signal.SIGINT, before)
    assert stop.value.exit_code == 130 and stop.value.step == 3
    assert "continue with: convbert-train" in capsys.readouterr().out
    assert [p.name for p in checkpoints(tmp_path / "checkpoints" / "task")] == ["step-000002", "step-000003"]
    monkeypatch.undo()
    run(compose_config([*TINY, "resume=true"]), tmp_path)
    assert_exact_continuation(tmp_path, straight)


def test_a_run_started_with_sigint_ignored_keeps_ignoring_it():
    """nohup and background jobs start with SIGINT ignored; training must not turn it back on."""
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with ctrl_c_stops_after_the_step(enabled=True) as asked:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)
            assert not asked["stop"]
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with ctrl_c_stops_after_the_step(enabled=True) as asked:
            signal.raise_signal(signal.SIGINT)
            assert asked["stop"]
    finally:
        signal.signal(signal.SIGINT, before)


def test_ctrl_c_on_the_command_line_exits_130_with_the_resume_command(tmp_path):
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    args = [a for a in TINY if not a.startswith("trainer.max_steps")] + ["trainer.max_steps=100000"]
    proc = subprocess.Popen([sys.executable, "-m", "convbert.train", *args, f"hydra.run.dir={tmp_path}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # a terminal's
    metrics = tmp_path / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.read_text().count("\n") >= 2) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Ctrl-C: finishing this step" in err
    assert f"resume=true hydra.run.dir={tmp_path}" in out
    assert len(checkpoints(tmp_path / "checkpoints" / "task")) >= 1
