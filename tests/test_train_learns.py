"""The recipe learns, and a stage that does not learn says so.

The first test runs the main job's fine-tuning recipe (its model, trainer and data configs, only fewer
examples and steps) from scratch on a subset of the shipped sentiment data: if a recipe change kills learning,
it fails. The others check the verdict every run prints: dead training and a NaN loss are reported as
``"learned": false`` with the reason, not as an accuracy beside the baseline.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from convbert.train.cli import compose_config
from convbert.train.job import format_summary, run
from convbert.train.tasks.sequence_classification import SequenceClassification

QUICK = ["pretrain=none", "trainer.progress=false", "data.max_examples=1024", "data.max_dev_examples=400"]


def summary_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def test_the_main_jobs_fine_tuning_recipe_beats_chance(tmp_path):
    run(compose_config([*QUICK, "trainer.max_steps=160"]), tmp_path)
    summary = summary_of(tmp_path)
    task = summary["stages"][-1]
    assert summary["learned"] is True, summary.get("reason")
    assert task["train"]["loss"] < 0.9 * task["chance_loss"]
    # 400 dev sentences: 0.56 is 2.4 standard errors above the majority's ~0.50
    assert summary["dev_metric"] > summary["baseline"]["majority_accuracy"] + 0.06


TINY = ["model.num_layers=1", "model.hidden_size=32", "model.num_heads=2", "model.intermediate_size=64",
        "model.embedding_size=16", "trainer.batch_size=8", "trainer.progress=false", "pretrain=none",
        "data.max_examples=64", "data.max_dev_examples=32", "trainer.log_every=2"]


def test_training_that_stays_at_chance_is_reported(tmp_path, capsys):
    run(compose_config([*TINY, "trainer.max_steps=8", "trainer.learning_rate=1e-9"]), tmp_path)
    summary = summary_of(tmp_path)
    stage = summary["stages"][-1]
    assert summary["learned"] is False and stage["learned"] is False
    assert stage["chance_loss"] == pytest.approx(math.log(2), abs=0.02)  # the sentiment classes are balanced
    assert "not below the chance level" in summary["reason"]
    out = capsys.readouterr().out
    assert "NOT LEARNED: task stage: the training loss ended at" in out
    assert out.rstrip().endswith("is not evidence of learning.")


def test_a_nan_loss_stops_the_stage_and_is_reported(tmp_path, monkeypatch, capsys):
    calls = []
    original = SequenceClassification.loss

    def loss(self, module, batch, rng):
        value, logs = original(self, module, batch, rng)
        calls.append(1)
        return (value * float("nan") if len(calls) == 5 else value), logs

    monkeypatch.setattr(SequenceClassification, "loss", loss)
    run(compose_config([*TINY, "trainer.max_steps=8"]), tmp_path)
    summary = summary_of(tmp_path)
    stage = summary["stages"][-1]
    assert stage["steps"] == 4 and "the training loss became nan at step 5" in stage["diverged"]
    assert summary["learned"] is False and "step 5" in summary["reason"]
    assert all(math.isfinite(v) for v in stage["dev"].values())  # the weights of step 4, not NaN
    assert "NOT LEARNED" in capsys.readouterr().out


def test_the_summary_line_says_nothing_when_all_learned():
    summary = {"run_dir": "r", "wall_seconds": 1.0, "encoder_parameters": 10, "model_source": "m",
               "tokenizer": "t", "metric": "accuracy", "dev_metric": 0.9, "baseline": {}, "learned": True,
               "stages": [{"stage": "task", "task": "x", "steps": 1, "steps_per_second": 1.0,
                           "train": {"loss": 0.1}, "dev": {"accuracy": 0.9}, "baseline": {},
                           "model_dir": "d", "model_class": "C"}]}
    assert "NOT LEARNED" not in format_summary(summary)
