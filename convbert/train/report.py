"""``convbert-report <dir>``: compare the runs of a sweep (or any folder of runs) in one table and one plot.

Every directory below ``<dir>`` holding a ``summary.json`` is a run. Each row shows the run's overrides, its
encoder's parameter count, and per stage the speed, the last training loss and the dev metric. The table is
printed as markdown and written to ``report.md`` and ``report.csv``; ``report.png`` plots the dev metric per
run and the training loss curves. When the runs differ in ``seed=`` (``-m ... seed=0,1,2``), a second table
gives each configuration's mean and standard deviation over its seeds (``report_by_config.csv``), and the plot
shows those means with the seeds as dots, so a difference can be read against the seed-to-seed spread.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import statistics
import sys
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from convbert.errors import ConfigError
from convbert.train.glue_report import glue_report
from convbert.train.history import FILE as HISTORY_FILE
from convbert.train.history import read_history
from convbert.user_errors import user_errors_reported


def _natural(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def find_runs(root: Path) -> list[Path]:
    """Run directories below ``root`` (``root`` itself included), in natural order (job 2 before job 10)."""
    return sorted((p.parent for p in root.rglob("summary.json")), key=_natural)


def incomplete_runs(root: Path) -> list[Path]:
    """Hydra job directories without a summary: killed, stopped or still running."""
    return sorted((p.parent.parent for p in root.rglob(".hydra/config.yaml")
                   if not (p.parent.parent / "summary.json").exists()
                   and not (p.parent.parent / "skipped.json").exists()), key=_natural)


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


def _without_seed(overrides: str) -> str:
    return " ".join(o for o in overrides.split(" ") if not o.startswith("seed=")) or "(defaults)"


def seed_groups(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]] | None:
    """Rows grouped by their overrides other than ``seed=``, in first-seen order; None if no run sets one."""
    if not any(o.startswith("seed=") for row in rows for o in row["overrides"].split(" ")):
        return None
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(_without_seed(row["overrides"]), []).append(row)
    return groups


def mean_rows(groups: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per configuration: the number of seeds, then every numeric column's mean and, for the losses
    and dev metrics, its standard deviation over the seeds (``<column> sd``; 0 with one seed)."""
    out = []
    for config, members in groups.items():
        row: dict[str, Any] = {"config": config, "seeds": len(members)}
        columns = [c for c in dict.fromkeys(k for m in members for k in m) if c not in ("run", "overrides")]
        for column in columns:
            values = _finite(m.get(column) for m in members)
            if not values:
                continue
            row[column] = statistics.fmean(values)
            if " loss" in column or " dev " in f" {column}":
                row[f"{column} sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
        out.append(row)
    return out


def _finite(values) -> list[float]:
    """The numbers among ``values`` that are finite: a diverged run's NaN loss or a missing metric is left
    out of a mean (the per-run table still shows it)."""
    return [float(v) for v in values
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)]


def mean_markdown(rows: list[dict[str, Any]]) -> str:
    """``mean_rows`` as markdown, each mean shown beside its standard deviation (``0.712 ± 0.004``)."""
    shown = []
    for row in rows:
        cells = {}
        for key, value in row.items():
            if key.endswith(" sd"):
                continue
            sd = row.get(f"{key} sd")
            cells[key] = f"{_fmt(value)} ± {sd:.2g}" if sd is not None else value
        shown.append(cells)
    return markdown(shown)


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


def short_labels(configs: list[str]) -> tuple[list[str], str]:
    """Plot labels for the configurations, and the swept keys for the axis title: when every configuration
    sets the same keys, a label is just the values (``span_conv`` for ``+experiment/conv_variant=span_conv``).
    """
    split = [[o.split("=", 1) for o in c.split(" ")] for c in configs]
    keys = [[part[0] for part in parts] for parts in split]
    if configs and all(len(p) == 2 for parts in split for p in parts) and all(k == keys[0] for k in keys):
        names = [k.lstrip("+~").rsplit("/", 1)[-1].rsplit(".", 1)[-1] for k in keys[0]]
        return [" ".join(p[1] for p in parts) for parts in split], " ".join(names)
    return [c if len(c) <= 48 else c[:45] + "..." for c in configs], ""


def plot(rows: list[dict[str, Any]], runs: list[Path], path: Path) -> Path:
    """Left: the last stage's dev metric per run (per configuration, mean ± sd with the seeds as dots, when
    the runs differ in seed). Right: each run's training loss over its last stage, a colour per configuration.
    """
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    metric_key = next((k for k in reversed(list(rows[0])) if " dev " in f" {k}"), None) if rows else None
    by_seed = seed_groups(rows)
    # without seeds every run is its own bar, even when two runs share their overrides
    groups = list(by_seed.items()) if by_seed else [(row["overrides"], [row]) for row in rows]
    labels, swept = short_labels([config for config, _ in groups])
    label_of = {config: label for (config, _), label in zip(groups, labels, strict=True)}
    colours = {config: f"C{i % 10}" for i, (config, _) in enumerate(groups)}
    per_group = [_finite(m.get(metric_key) for m in members) if metric_key else [] for _, members in groups]
    means = [statistics.fmean(v) if v else 0.0 for v in per_group]
    sds = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in per_group]
    left.barh(range(len(means)), means, xerr=sds if any(sds) else None, color="tab:blue", alpha=0.8,
              capsize=3)
    for i, values in enumerate(per_group):
        if len(values) > 1:
            left.plot(values, [i] * len(values), "o", color="black", ms=3)
    left.set_yticks(range(len(means)), labels, fontsize=8)
    left.invert_yaxis()
    if swept:
        left.set_title(swept, fontsize=9)
    seeds = max(len(v) for v in per_group) if per_group else 1
    better = " (lower is better)" if metric_key and "loss" in metric_key else ""
    left.set_xlabel((metric_key or "dev metric") + better + (f"\nmean ± sd over {seeds} seeds; dots: seeds"
                                                             if seeds > 1 else ""))
    shown = [x for v in per_group for x in v]
    if shown:  # zoom to the values: the differences between configurations are what matters
        low, high = min(shown), max(shown)
        pad = max(high - low, abs(high) * 0.01, 1e-6)
        left.set_xlim(low - pad, high + pad)
    for i, (m, sd) in enumerate(zip(means, sds, strict=True)):
        left.text(m + sd, i, f"  {m:.4g}", va="center", fontsize=8)
    labelled: set[str] = set()
    for run_dir, row in zip(runs, rows, strict=True):
        config = _without_seed(row["overrides"]) if by_seed else row["overrides"]
        records = [r for r in read_history(run_dir / HISTORY_FILE) if r["split"] == "train"]
        last = records[-1]["stage"] if records else None
        points = [(r["step"], r["loss"]) for r in records if r["stage"] == last]
        if points:
            label = None if config in labelled else label_of.get(config, config)
            labelled.add(config)
            right.plot(*zip(*points, strict=True), label=label, lw=1.0, color=colours.get(config),
                       alpha=0.8)
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
        raise ConfigError(f"no finished runs (summary.json) under {root}; pass a sweep directory "
                          "(multirun/<name>) or a folder holding run directories")
    common = common_overrides([json.loads((r / "summary.json").read_text()) for r in runs])
    rows = [run_row(r, root, common) for r in runs]
    out = out or root
    out.mkdir(parents=True, exist_ok=True)
    text = (f"All runs: {' '.join(common)}\n\n" if common else "") + markdown(rows)
    (out / "report.csv").write_text(csv_text(rows))
    groups = seed_groups(rows)
    if groups:
        means = mean_rows(groups)
        text += "\nMean over seeds (± standard deviation):\n\n" + mean_markdown(means)
        (out / "report_by_config.csv").write_text(csv_text(means))
    glue = glue_report(runs)
    if glue:
        text += "\nGLUE (dev, convbert/train/glue_report.py):\n\n" + glue
    (out / "report.md").write_text(text)
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
    with user_errors_reported("convbert-report"):
        text = report(args.directory, args.out)
    print(text, end="")
    skipped = incomplete_runs(args.directory)
    if skipped:
        print(f"\nnot finished (no summary.json): {', '.join(str(p) for p in skipped)}", file=sys.stderr)
    print(f"\nwrote {(args.out or args.directory) / 'report.md'}, report.csv, report.png", file=sys.stderr)


if __name__ == "__main__":
    main()
