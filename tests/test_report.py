"""convbert-report on hand-made run directories: one row per run, the shared overrides once, CSV and PNG."""

from __future__ import annotations

import csv
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


def test_report_on_a_folder_without_runs_says_so(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("convbert-report: error: no finished runs") and "Traceback" not in err


def test_runs_that_differ_in_seed_are_also_summarised_per_configuration(tmp_path, capsys):
    accuracies = {(3, 0): 0.60, (3, 1): 0.64, (3, 2): 0.65, (9, 0): 0.70, (9, 1): 0.74, (9, 2): 0.69}
    for job, ((kernel, seed), accuracy) in enumerate(accuracies.items()):
        overrides = ["pretrain=none", f"model.kernel_size={kernel}", f"seed={seed}"]
        fake_run(tmp_path / str(job), overrides, accuracy)
    main([str(tmp_path)])
    out = capsys.readouterr().out
    per_run, per_config = out.split("Mean over seeds")
    assert len([line for line in per_run.splitlines() if line.startswith("| ") and "run" not in line]) == 6
    rows = [line.split(" | ") for line in per_config.splitlines() if line.startswith("| model.")]
    assert [r[0] for r in rows] == ["| model.kernel_size=3", "| model.kernel_size=9"]
    header = next(line for line in per_config.splitlines() if line.startswith("| config")).split(" | ")
    column = header.index("task dev accuracy")
    for row, kernel in zip(rows, (3, 9), strict=True):
        values = [a for (k, _), a in accuracies.items() if k == kernel]
        mean = sum(values) / 3
        sd = (sum((v - mean) ** 2 for v in values) / 2) ** 0.5
        assert row[1] == "3"  # seeds
        shown_mean, shown_sd = row[column].split(" ± ")
        assert float(shown_mean) == pytest.approx(mean, abs=1e-4)
        assert float(shown_sd) == pytest.approx(sd, rel=0.05)  # shown to 2 significant digits
    with open(tmp_path / "report_by_config.csv") as fh:
        by_config = list(csv.DictReader(fh))
    assert [r["config"] for r in by_config] == ["model.kernel_size=3", "model.kernel_size=9"]
    assert float(by_config[1]["task dev accuracy sd"]) == pytest.approx(0.02646, rel=1e-3)
    assert float(by_config[1]["task dev accuracy"]) == pytest.approx(0.71, rel=1e-3)
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_a_single_seed_sweep_has_no_per_configuration_table(tmp_path, capsys):
    for job in range(2):
        fake_run(tmp_path / str(job), ["seed=0", f"model.kernel_size={job + 3}"], 0.6)
    main([str(tmp_path)])
    assert "Mean over seeds" not in capsys.readouterr().out
    assert not (tmp_path / "report_by_config.csv").exists()


def test_plot_labels_are_the_swept_values_when_every_run_sets_the_same_keys():
    from convbert.train.report import short_labels

    assert short_labels(["+experiment/conv_variant=span_conv", "+experiment/conv_variant=none"]) == (
        ["span_conv", "none"], "conv_variant")
    two_keys = ["model.kernel_size=3 model.num_groups=2", "model.kernel_size=9 model.num_groups=1"]
    assert short_labels(two_keys) == (["3 2", "9 1"], "kernel_size num_groups")
    labels, title = short_labels(["model.kernel_size=3", "model=bert_tiny"])  # different keys: kept whole
    assert labels == ["model.kernel_size=3", "model=bert_tiny"] and title == ""


def test_a_diverged_run_and_repeated_overrides_do_not_break_the_report(tmp_path, capsys):
    fake_run(tmp_path / "0", ["model.kernel_size=3", "seed=0"], float("nan"))  # a diverged run
    fake_run(tmp_path / "1", ["model.kernel_size=3", "seed=1"], 0.7)
    main([str(tmp_path)])
    per_config = capsys.readouterr().out.split("Mean over seeds")[1]
    row = next(line for line in per_config.splitlines() if line.startswith("| (defaults)"))  # shared: above
    assert "0.7 ± 0" in row, "the NaN is left out of the mean"
    other = tmp_path / "again"
    for job in range(2):  # two runs with the same overrides and no seeds: two bars, no crash
        fake_run(other / str(job), ["pretrain=none"], float("inf") if job else 0.6)
    main([str(other)])
    assert (other / "report.png").stat().st_size > 0
