"""``convbert-report <dir>``: compare the runs of a sweep (or any folder of runs) in one table and one plot.

Every directory below ``<dir>`` holding a ``summary.json`` is a run. Each row shows the run's overrides, its
encoder's parameter count, and per stage the speed, the last training loss and the dev metric. The table is
printed as markdown and written to ``report.md`` and ``report.csv``; ``report.png`` plots the dev metric per
run and the training loss curves.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from convbert.train.history import FILE as HISTORY_FILE
from convbert.train.history import read_history


def _natural(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def find_runs(root: Path) -> list[Path]:
    """Run directories below ``root`` (``root`` itself included), in natural order (job 2 before job 10)."""
    return sorted((p.parent for p in root.rglob("summary.json")), key=_natural)


def incomplete_runs(root: Path) -> list[Path]:
    """Hydra job directories without a summary: killed, stopped or still running."""
    return sorted((p.parent.parent for p in root.rglob(".hydra/config.yaml")
                   if not (p.parent.parent / "summary.json").exists()), key=_natural)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def common_overrides(summaries: list[dict[str, Any]]) -> list[str]:
    """Overrides every run shares (shown once, above the table)."""
    if len(summaries) < 2:
        return []
    first = summaries[0].get("overrides") or []
    return [o for o in first if all(o in (s.get("overrides") or []) for s in summaries[1:])]


def run_row(run_dir: Path, root: Path, common: list[str] = ()) -> dict[str, Any]:
    summary = json.loads((run_dir / "summary.json").read_text())
    own = [o for o in summary.get("overrides") or [] if o not in common]
    row: dict[str, Any] = {
        "run": str(run_dir.relative_to(root)) if run_dir != root else run_dir.name,
        "overrides": " ".join(own) or "(defaults)",
        "params (M)": round(summary["encoder_parameters"] / 1e6, 3),
    }
    for stage in summary["stages"]:
        name = stage["stage"]
        row[f"{name} steps/s"] = stage["steps_per_second"]
        row[f"{name} train loss"] = stage["train"].get("loss")
        row[f"{name} dev {stage['metric']}"] = stage["dev"].get(stage["metric"])
    for key, value in summary.get("baseline", {}).items():
        row[key.replace("_", " ")] = value
    row["wall s"] = summary.get("wall_seconds")
    return row


def table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    return columns, [[_fmt(row.get(c)) for c in columns] for row in rows]


def markdown(rows: list[dict[str, Any]]) -> str:
    columns, cells = table(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict[str, Any]]) -> str:
    columns, cells = table(rows)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(cells)
    return out.getvalue()


def plot(rows: list[dict[str, Any]], runs: list[Path], path: Path) -> Path:
    """Left: the last stage's dev metric per run. Right: each run's training loss over its last stage."""
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    metric_key = next((k for k in reversed(list(rows[0])) if " dev " in f" {k}"), None) if rows else None
    labels = [row["overrides"] if len(row["overrides"]) <= 40 else row["run"] for row in rows]
    values = [row.get(metric_key) or 0.0 for row in rows] if metric_key else []
    left.barh(range(len(values)), values, color="tab:blue")
    left.set_yticks(range(len(values)), labels, fontsize=8)
    left.invert_yaxis()
    left.set_xlabel(metric_key or "dev metric")
    for i, v in enumerate(values):
        left.text(v, i, f" {v:.4g}", va="center", fontsize=8)
    for run_dir, label in zip(runs, labels, strict=True):
        records = [r for r in read_history(run_dir / HISTORY_FILE) if r["split"] == "train"]
        last = records[-1]["stage"] if records else None
        points = [(r["step"], r["loss"]) for r in records if r["stage"] == last]
        if points:
            right.plot(*zip(*points, strict=True), label=label, lw=1.2, marker="o", ms=2)
    right.set_xlabel("step")
    right.set_ylabel("training loss (last stage)")
    right.grid(alpha=0.3)
    if right.get_legend_handles_labels()[0]:
        right.legend(fontsize=7)
    fig.savefig(path, dpi=110)
    return path


def report(root: Path, out: Path | None = None) -> str:
    """Write report.md, report.csv and report.png into ``out`` (default ``root``); return the markdown."""
    runs = find_runs(root)
    if not runs:
        raise SystemExit(f"convbert-report: no runs (summary.json) under {root}")
    common = common_overrides([json.loads((r / "summary.json").read_text()) for r in runs])
    rows = [run_row(r, root, common) for r in runs]
    out = out or root
    out.mkdir(parents=True, exist_ok=True)
    text = (f"All runs: {' '.join(common)}\n\n" if common else "") + markdown(rows)
    (out / "report.md").write_text(text)
    (out / "report.csv").write_text(csv_text(rows))
    plot(rows, runs, out / "report.png")
    return text


def main(argv: list[str] | None = None) -> None:
    """Console script ``convbert-report``."""
    parser = argparse.ArgumentParser(prog="convbert-report", description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path,
                        help="a sweep directory (multirun/<date-time>) or any folder of runs")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write report.{md,csv,png} (default: the directory)")
    args = parser.parse_args(argv)
    if not args.directory.is_dir():
        parser.error(f"{args.directory} is not a directory")
    text = report(args.directory, args.out)
    print(text, end="")
    skipped = incomplete_runs(args.directory)
    if skipped:
        print(f"\nnot finished (no summary.json): {', '.join(str(p) for p in skipped)}", file=sys.stderr)
    print(f"\nwrote {(args.out or args.directory) / 'report.md'}, report.csv, report.png", file=sys.stderr)


if __name__ == "__main__":
    main()
