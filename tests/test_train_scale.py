"""Pretraining at scale: one batch of B, B/2 x 2 accumulated micro-batches and 2 processes x B/2 are the same
update; a killed run resumes from its token store; resume continues the run's own config."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from convbert.train.cli import compose_config
from convbert.train.job import resume_overrides, run

TEXT = [f"sentence {i} tells that {i * 3} birds sat on the {['old', 'red', 'tall'][i % 3]} tree by the river."
        for i in range(400)]


def tiny(corpus: Path, cache: Path, task: str) -> list[str]:
    return [f"task={task}", "pretrain=none", f"data.path={corpus}", f"data.cache_dir={cache}",
            "data.prepare_workers=1", "model.num_layers=1", "model.hidden_size=32", "model.num_heads=2",
            "model.intermediate_size=64", "model.embedding_size=16", "model.dropout=0.0",
            "model.embedding.vocab_size=512", "trainer.max_steps=4", "trainer.log_every=1",
            "trainer.progress=false", "trainer.learning_rate=3e-3", "trainer.warmup_steps=1",
            "data.max_length=32", "data.max_dev_examples=4", "seed=3"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("scale")
    (root / "corpus.txt").write_text("\n".join(TEXT) + "\n")
    return root / "corpus.txt", root / "cache"


def train_losses(run_dir: Path) -> list[dict[str, float]]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    keys = ("loss", "generator_loss", "discriminator_loss")
    return [{k: r[k] for k in keys if k in r} for r in records if r["split"] == "train"]


def weights(run_dir: Path, task: str) -> dict[str, torch.Tensor]:
    step = sorted((run_dir / "checkpoints" / "task").glob("step-*"))[-1]
    return load_file(str(step / "model.safetensors"))


def torchrun(tmp_path: Path, overrides: list[str], run_dir: Path, nodes: int = 1) -> None:
    """Two processes: one launcher of two (``--standalone``), or two "nodes" of one process each, joined as
    on a cluster by the static rendezvous flags (``--nnodes --node_rank --master_addr --master_port``)."""
    env = {**os.environ, "CONVBERT_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_WAIT_POLICY": "PASSIVE",
           "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    run = [sys.executable, "-m", "torch.distributed.run"]
    if nodes == 1:
        commands = [[*run, "--standalone", "--nproc_per_node=2"]]
    else:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        commands = [[*run, "--nnodes=2", f"--node_rank={rank}", "--nproc_per_node=1",
                     "--master_addr=127.0.0.1", f"--master_port={port}"] for rank in range(2)]
    launchers = [subprocess.Popen([*c, "-m", "convbert.train", *overrides, f"hydra.run.dir={run_dir}"],
                                  cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env, start_new_session=True) for c in commands]
    try:
        outputs = [launcher.communicate(timeout=300) for launcher in launchers]
    except subprocess.TimeoutExpired:
        for launcher in launchers:
            os.killpg(launcher.pid, signal.SIGKILL)
        raise
    for launcher, (stdout, stderr) in zip(launchers, outputs, strict=True):
        assert launcher.returncode == 0, stdout[-3000:] + stderr[-3000:]


@pytest.mark.parametrize("task", ["pretrain_mlm", "pretrain_rtd"])
def test_accumulation_and_processes_give_the_update_of_the_whole_batch(tmp_path, corpus, task):
    base = tiny(*corpus, task)
    torch.set_num_threads(1)
    try:
        run(compose_config([*base, "trainer.batch_size=8"]), tmp_path / "one")
        run(compose_config([*base, "trainer.batch_size=4", "trainer.grad_accum_steps=2"]), tmp_path / "accum")
    finally:
        torch.set_num_threads(min(2, os.cpu_count() or 1))
    # RTD's two processes are two "nodes" launched with the multi-node flags (docs/pretraining.md)
    nodes = 2 if task == "pretrain_rtd" else 1
    torchrun(tmp_path, [*base, "trainer.batch_size=4"], tmp_path / "two", nodes=nodes)
    reference = train_losses(tmp_path / "one")
    assert len(reference) == 4 and reference[0] != reference[-1]
    for other in ("accum", "two"):
        for step, (a, b) in enumerate(zip(reference, train_losses(tmp_path / other), strict=True), 1):
            assert a.keys() == b.keys()
            for key in a:
                assert b[key] == pytest.approx(a[key], abs=1e-5, rel=1e-5), f"{other} step {step} {key}"
        theirs = weights(tmp_path / other, task)
        for name, tensor in weights(tmp_path / "one", task).items():
            torch.testing.assert_close(theirs[name], tensor, atol=1e-5, rtol=1e-5, msg=f"{other}: {name}")
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    stage = summary["stages"][-1]
    assert stage["global_batch"] == 8 and stage["tokens_per_second"] > 0 and stage["model_tflops"] > 0


def test_a_killed_run_resumes_from_its_token_store_without_reading_the_corpus(tmp_path, corpus, monkeypatch):
    from convbert.data import token_store

    text = tmp_path / "corpus.txt"
    text.write_text(corpus[0].read_text())
    overrides = [*tiny(text, tmp_path / "cache", "pretrain_rtd"), "trainer.batch_size=4",
                 "trainer.max_steps=6", "trainer.save_every=3"]
    run(compose_config(overrides), tmp_path / "straight")
    assert run(compose_config([*overrides, "trainer.stop_after=3"]), tmp_path / "resumed") is None
    with open(text, "a") as handle:  # the corpus grew: the resumed run still reads the store it started with
        handle.write("a paragraph added after the run started.\n")
    monkeypatch.setattr(token_store, "prepare", lambda *a, **k: pytest.fail("the corpus was read again"))
    run(compose_config([*overrides, "resume=true"]), tmp_path / "resumed")
    assert train_losses(tmp_path / "resumed") == train_losses(tmp_path / "straight")
    straight, resumed = weights(tmp_path / "straight", ""), weights(tmp_path / "resumed", "")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight), "bit-identical weights"


def test_resume_continues_the_runs_own_overrides_and_lists_changes():
    saved = ["task=pretrain_mlm", "trainer.max_steps=60", "trainer.stop_after=20", "model=bert_tiny"]
    merged, changes = resume_overrides(saved, ["resume=true", "hydra.run.dir=out", "trainer.max_steps=80"])
    assert merged == ["task=pretrain_mlm", "model=bert_tiny", "resume=true", "hydra.run.dir=out",
                      "trainer.max_steps=80"], "stop_after is one-off; the new max_steps replaces the old"
    assert changes == ["trainer.max_steps: 60 -> 80"]


def test_the_command_line_resume_uses_the_saved_overrides(tmp_path, corpus, capsys):
    from convbert.train import cli

    run_dir = tmp_path / "run"
    run(compose_config([*tiny(*corpus, "pretrain_mlm"), "trainer.batch_size=4", "trainer.max_steps=3",
                        "trainer.stop_after=1"]), run_dir,
        overrides=[*tiny(*corpus, "pretrain_mlm"), "trainer.batch_size=4", "trainer.max_steps=3",
                   "trainer.stop_after=1"])
    assert "continue with: convbert-train resume=true hydra.run.dir=" in capsys.readouterr().out
    args = cli.continue_own_run(["resume=true", f"hydra.run.dir={run_dir}", "trainer.log_every=2"])
    assert "trainer.max_steps=3" in args and "trainer.stop_after=1" not in args
    assert "trainer.log_every=2" in args and "trainer.log_every=1" not in args
    assert "trainer.log_every: 1 -> 2" in capsys.readouterr().err


def test_progress_reaches_the_pretrain_stage_and_logs_are_lines_without_a_terminal(tmp_path, corpus, capsys):
    cfg = compose_config(["trainer.progress=false"])
    assert cfg.pretrain.trainer.progress is False
    overrides = [*tiny(*corpus, "pretrain_mlm"), "trainer.progress=true", "trainer.batch_size=4",
                 "trainer.log_every=2"]
    run(compose_config(overrides), tmp_path / "run")
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "step " in line]
    assert [line.split("step ")[1].split()[0] for line in lines] == ["2/4", "4/4"]
    assert "\r" not in err and "tokens/s" in lines[0]


@pytest.mark.parametrize("size", ["small", "medium_small", "base"])
@pytest.mark.parametrize("objective", ["", "_mlm"])
def test_every_released_recipe_composes_and_trains(tmp_path, size, objective):
    from convbert.train.job import plan_run

    cfg = compose_config([f"experiment=pretrain_{size}{objective}"])
    plan = plan_run(cfg)
    trainer = plan.stages[-1].trainer
    assert plan.stages[-1].task.name == ("pretrain_mlm" if objective else "pretrain_rtd")
    assert (trainer.max_steps, trainer.warmup_steps) == (1_000_000, 10_000)
    assert trainer.batch_size == (256 if size == "base" else 128)
    assert trainer.learning_rate == {"small": 3e-4, "medium_small": 5e-4, "base": 2e-4}[size]
    if not objective:
        assert plan.stages[-1].task.generator_size_divisor == (3 if size == "base" else 4)
        assert plan.stages[-1].task.temperature == 1.0
    quick = ["trainer.max_steps=1", "trainer.batch_size=2", "trainer.precision=fp32", "data.max_length=16",
             "data.max_examples=4", "data.max_dev_examples=2", "trainer.progress=false", "model.num_layers=2"]
    run(compose_config([f"experiment=pretrain_{size}{objective}", *quick]), tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["stages"][-1]["steps"] == 1


def test_the_released_sizes_pretrain_from_the_command_line():
    from convbert.train.job import plan_run

    for objective in ("task=pretrain_mlm", "pretrain=mlm"):
        plan_run(compose_config(["model=convbert_small", objective]))


def test_ranks_read_disjoint_slices_that_cover_the_epoch():
    from convbert.train.batching import BatchOrder

    world = 2
    orders = [BatchOrder(1003, 8, seed=5, rank=r, world_size=world) for r in range(world)]
    shares = [order.epoch(0) for order in orders]
    seen = torch.cat([share.flatten() for share in shares]).tolist()
    assert len(seen) == len(set(seen)) == orders[0].steps_per_epoch * 16, "disjoint, every used window once"
    alone = BatchOrder(1003, 16, seed=5).epoch(0)  # one process reading the global batch
    assert sorted(seen) == sorted(alone.flatten().tolist())
    for order, share in zip(orders, shares, strict=True):  # a rank's rows are its places in the global batch
        assert torch.equal(alone[:, order.rows()], share)


def test_dataloader_workers_read_the_same_batches(tmp_path, corpus):
    base = [*tiny(*corpus, "pretrain_mlm"), "trainer.batch_size=4", "trainer.max_steps=3"]
    run(compose_config(base), tmp_path / "in_process")
    run(compose_config([*base, "trainer.num_workers=2"]), tmp_path / "workers")
    assert train_losses(tmp_path / "workers") == train_losses(tmp_path / "in_process")


def test_fp16_on_the_cpu_is_refused_with_the_fix():
    from convbert.errors import ConfigError
    from convbert.train.job import plan_run

    with pytest.raises(ConfigError, match=r"trainer.precision: fp16 needs a CUDA device.*bf16"):
        plan_run(compose_config(["task=pretrain_mlm", "trainer.precision=fp16", "trainer.device=cpu"]))
