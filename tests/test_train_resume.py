"""Nothing lost: atomic safetensors + JSON checkpoints; a stopped-then-resumed run equals an unbroken one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from convbert.errors import ConfigError
from convbert.train.checkpoint import latest_checkpoint, load_optimizer, optimizer_files
from convbert.train.cli import compose_config
from convbert.train.job import run

TINY = ["model.num_layers=1", "model.hidden_size=32", "model.num_heads=2", "model.intermediate_size=64",
        "model.embedding_size=16", "trainer.batch_size=4", "trainer.progress=false", "trainer.log_every=1",
        "data.max_length=32", "data.max_examples=12", "data.max_dev_examples=8"]


def losses(run_dir: Path) -> list[tuple[str, int, float]]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["stage"], r["step"], r["loss"]) for r in records if r["split"] == "train"]


@pytest.mark.parametrize("task", ["pretrain_rtd", "sentiment"])
def test_a_stopped_and_resumed_run_logs_the_same_losses(tmp_path, task):
    overrides = [*TINY, f"task={task}", "pretrain=none", "trainer.max_steps=6"]
    run(compose_config(overrides), tmp_path / "straight")
    assert run(compose_config([*overrides, "trainer.stop_after=3"]), tmp_path / "resumed") is None
    assert [s for _, s, _ in losses(tmp_path / "resumed")] == [1, 2, 3]
    assert not (tmp_path / "resumed" / "summary.json").exists()
    run(compose_config([*overrides, "resume=true"]), tmp_path / "resumed")
    straight, resumed = losses(tmp_path / "straight"), losses(tmp_path / "resumed")
    assert [s for _, s, _ in resumed] == [1, 2, 3, 4, 5, 6]
    for (_, step, a), (_, _, b) in zip(straight, resumed, strict=True):
        assert a == pytest.approx(b, abs=1e-6), f"step {step}"


def test_resume_after_a_finished_stage_continues_with_the_next(tmp_path):
    overrides = [*TINY, "pretrain.trainer.max_steps=2", "pretrain.trainer.batch_size=4",
                 "pretrain.trainer.progress=false", "pretrain.data.max_examples=8",
                 "pretrain.data.max_length=32", "pretrain.data.max_dev_examples=4", "trainer.max_steps=4"]
    run(compose_config(overrides), tmp_path / "straight")
    run(compose_config([*overrides, "trainer.stop_after=2"]), tmp_path / "resumed")
    run(compose_config([*overrides, "resume=true"]), tmp_path / "resumed")
    pairs = zip(losses(tmp_path / "straight"), losses(tmp_path / "resumed"), strict=True)
    for (stage, step, a), (_, _, b) in pairs:
        assert a == pytest.approx(b, abs=1e-6), f"{stage} step {step}"
    summary = json.loads((tmp_path / "resumed" / "summary.json").read_text())
    assert summary["resumed"] and [s["stage"] for s in summary["stages"]] == ["pretrain", "task"]


def test_checkpoints_are_safetensors_and_json_written_atomically(tmp_path):
    run(compose_config([*TINY, "task=pretrain_mlm", "trainer.max_steps=4", "trainer.save_every=2",
                        "trainer.keep_checkpoints=1"]), tmp_path)
    directory = tmp_path / "checkpoints" / "task"
    checkpoint = latest_checkpoint(directory)
    assert checkpoint.name == "step-000004"
    assert sorted(p.name for p in directory.iterdir()) == ["data.json", "done.json", "step-000004"]  # pruned
    assert sorted(p.name for p in checkpoint.iterdir()) == [
        "manifest.json", "model.safetensors", "optimizer.safetensors", "rng-rank0.json",
        "rng-rank0.safetensors", "state.json"]
    manifest = json.loads((checkpoint / "manifest.json").read_text())["files"]
    assert sorted(manifest) == sorted(p.name for p in checkpoint.iterdir() if p.name != "manifest.json")
    assert manifest["state.json"]["bytes"] == (checkpoint / "state.json").stat().st_size
    state = json.loads((checkpoint / "state.json").read_text())
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (4, 1, 1)  # 3 batches per epoch
    assert not list(tmp_path.rglob("*.tmp")), "no temporary files are left behind"


def test_optimizer_state_round_trips_through_tensors_and_json():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, betas=(0.8, 0.9))
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    tensors, meta = optimizer_files(optimizer)
    meta = json.loads(json.dumps(meta))  # what state.json holds
    fresh = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=0.5)
    load_optimizer(fresh, tensors, meta)
    assert fresh.param_groups[0]["betas"] == (0.8, 0.9) and fresh.param_groups[0]["lr"] == 0.1
    for a, b in zip(optimizer.state.values(), fresh.state.values(), strict=True):
        torch.testing.assert_close(a["exp_avg"], b["exp_avg"])


def test_a_finished_run_directory_is_not_overwritten(tmp_path):
    overrides = [*TINY, "task=pretrain_mlm", "trainer.max_steps=1"]
    run(compose_config(overrides), tmp_path)
    with pytest.raises(ConfigError, match=r"already holds a run .* resume=true"):
        run(compose_config(overrides), tmp_path)
