"""The plugin's task from outside convbert: its metrics, its data, and a run of `convbert-train`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from convbert_sentiment_intensity.data import load_split
from convbert_sentiment_intensity.metrics import pearson, ranks, spearman


def test_pearson_and_spearman_match_torch() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, generator=g, dtype=torch.float64)
    y = 0.5 * x + torch.randn(50, generator=g, dtype=torch.float64)
    expected = torch.corrcoef(torch.stack([x, y]))[0, 1].item()
    assert pearson(x.tolist(), y.tolist()) == pytest.approx(expected, abs=1e-12)
    rx = torch.tensor(ranks(x.tolist()))
    ry = torch.tensor(ranks(y.tolist()))
    expected_rho = torch.corrcoef(torch.stack([rx, ry]))[0, 1].item()
    assert spearman(x.tolist(), y.tolist()) == pytest.approx(expected_rho)
    assert spearman([1, 2, 3, 4], [1, 4, 9, 16]) == pytest.approx(1.0)  # monotone, not linear
    assert ranks([3.0, 1.0, 3.0, 2.0]) == [3.5, 1.0, 3.5, 2.0]  # ties share their mean rank


def test_the_shipped_splits_are_disjoint_and_complete() -> None:
    splits = {name: load_split(name) for name in ("train", "dev", "test")}
    assert [len(s) for s in splits.values()] == [2966, 371, 371]
    texts = [{r["text"] for r in s} for s in splits.values()]
    # split by the text's hash: a sentence that occurs twice upstream lands twice in the same split
    assert not (texts[0] & texts[1]) and not (texts[0] & texts[2]) and not (texts[1] & texts[2])
    assert all(-4 <= r["score"] <= 4 for s in splits.values() for r in s)


def test_convbert_train_trains_evaluates_saves_and_reloads_the_task(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    env.pop("CONVBERT_DISABLE_PLUGIN_AUTOLOAD", None)
    args = ["task=sentiment_intensity", "pretrain=none", "trainer.max_steps=3", "trainer.num_threads=1",
            "trainer.progress=false", "data.max_examples=32", "data.max_dev_examples=16",
            "data.max_length=32", "model.num_layers=1", "hydra.run.dir=run"]
    proc = subprocess.run([sys.executable, "-m", "convbert.train", *args], cwd=tmp_path, capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["metric"] == "pearson" and -1 <= summary["dev_metric"] <= 1
    assert {"pearson", "spearman", "mse"} <= set(summary["stages"][-1]["dev"])
    assert "mean_prediction_mse" in summary["baseline"]

    from convbert import ConvBertForSequenceClassification, ConvBertTokenizerFast

    model = ConvBertForSequenceClassification.from_pretrained(tmp_path / "run" / "model")
    tokenizer = ConvBertTokenizerFast.from_pretrained(tmp_path / "run" / "model")
    assert model.config.num_labels == 1 and model.config.problem_type == "regression"
    out = model(**tokenizer(["great little player", "it broke"], padding=True, return_tensors="pt"),
                labels=torch.tensor([2.0, -2.0]))
    assert out.logits.shape == (2, 1) and torch.isfinite(out.loss)
