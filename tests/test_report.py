"""convbert-report on hand-made run directories: one row per run, the shared overrides once, CSV and PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convbert.train.report import find_runs, main


def fake_run(directory: Path, overrides: list[str], accuracy: float) -> None:
    directory.mkdir(parents=True)
    stage = {"stage": "task", "task": "sequence_classification", "metric": "accuracy", "steps": 10,
             "steps_per_second": 5.0, "train": {"loss": 0.5}, "dev": {"accuracy": accuracy, "loss": 0.6}}
    summary = {"overrides": overrides, "encoder_parameters": 1_330_000, "stages": [stage],
               "wall_seconds": 12.0, "baseline": {"majority_accuracy": 0.5}}
    (directory / "summary.json").write_text(json.dumps(summary))
    records = [{"stage": "task", "step": s, "split": "train", "loss": 1.0 / s} for s in (1, 2, 3)]
    (directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_report_prints_one_row_per_run_and_writes_its_files(tmp_path, capsys):
    for job in range(11):
        fake_run(tmp_path / str(job), ["pretrain=none", f"model.kernel_size={2 * job + 1}"], 0.6 + job / 100)
    (tmp_path / "stopped" / ".hydra").mkdir(parents=True)
    (tmp_path / "stopped" / ".hydra" / "config.yaml").write_text("{}")
    assert [p.name for p in find_runs(tmp_path)][:3] == ["0", "1", "2"]  # natural order: 2 before 10
    main([str(tmp_path)])
    out, err = capsys.readouterr()
    assert out.startswith("All runs: pretrain=none\n")
    rows = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| run")]
    assert len(rows) == 11
    assert rows[1].split(" | ")[:3] == ["| 1", "model.kernel_size=3", "1.33"]
    assert "task dev accuracy" in out and "majority accuracy" in out
    assert "stopped" in err, "unfinished runs are named"
    for name in ("report.md", "report.csv", "report.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_report_on_a_folder_without_runs_says_so(tmp_path):
    with pytest.raises(SystemExit, match="no runs"):
        main([str(tmp_path)])
