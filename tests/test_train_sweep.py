"""Sweeps with Hydra's basic launcher (``-m``), then ``convbert-report`` over the sweep directory."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

TOY = [
    "pretrain=none", "task=pretrain_mlm", "model.num_layers=1", "model.hidden_size=32", "model.num_heads=2",
       "model.intermediate_size=64", "model.embedding_size=16", "trainer.max_steps=2", "trainer.batch_size=4",
       "trainer.log_every=1", "data.max_examples=8", "data.max_dev_examples=4", "data.max_length=32",
       "trainer.progress=false"]


def test_a_two_run_sweep_and_its_report(tmp_path):
    env = {**os.environ, "CONVBERT_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_WAIT_POLICY": "PASSIVE",
           "TOKENIZERS_PARALLELISM": "false"}
    sweep = subprocess.run([sys.executable, "-m", "convbert.train", "-m", "model.kernel_size=3,5", *TOY,
                            "hydra.sweep.dir=sweep"], cwd=tmp_path, capture_output=True, text=True, env=env,
                           timeout=300)
    assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    for job in ("0", "1"):
        assert (tmp_path / "sweep" / job / "summary.json").is_file()

    report = subprocess.run([sys.executable, "-m", "convbert.train.report", "sweep"], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=120)
    assert report.returncode == 0, report.stderr
    lines = report.stdout.splitlines()
    header = next(line for line in lines if line.startswith("| run"))
    for column in ("overrides", "params (M)", "task steps/s", "task train loss", "task dev loss"):
        assert column in header
    rows = [line for line in lines if line.startswith(("| 0 ", "| 1 "))]
    assert len(rows) == 2
    assert "model.kernel_size=3" in rows[0] and "model.kernel_size=5" in rows[1]
    assert lines[0].startswith("All runs: pretrain=none task=pretrain_mlm")
    with open(tmp_path / "sweep" / "report.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 2
    assert (tmp_path / "sweep" / "report.png").read_bytes()[:4] == b"\x89PNG"
