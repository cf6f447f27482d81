"""The GLUE table of a sweep (``convbert-report`` on ``experiment=glue``): each task's official metric(s), the
GLUE score and the 8-task average papers report.

A task's score is the unweighted mean of its metrics, x 100 (MRPC and QQP: F1 and accuracy; STS-B: Pearson and
Spearman; MNLI: matched and mismatched accuracy), as the GLUE leaderboard averages a task's metrics. The GLUE
score is the mean of the nine task scores; "avg w/o WNLI" the mean of the other eight (ELECTRA's and
ConvBERT's tables leave WNLI out). Several runs of a task (seeds) give the mean of their scores, with their
number.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from convbert.data.glue import TASKS

SCORED = {"mnli": ("accuracy", "accuracy_mismatched")}


def task_metrics(summary: dict[str, Any]) -> tuple[str, dict[str, float]] | None:
    """(GLUE task, its official dev metrics) of a run's last stage, or None for another task."""
    stage = summary["stages"][-1]
    config = stage.get("config", {}).get("task", {})
    if stage.get("task") != "glue" or config.get("glue_task") not in TASKS:
        return None
    name = config["glue_task"]
    keys = SCORED.get(name, TASKS[name].metrics)
    return name, {k: stage["dev"][k] for k in keys if k in stage["dev"]}


def glue_table(summaries: list[dict[str, Any]]) -> str | None:
    """Markdown: one row per task present, then the GLUE score and the average without WNLI (when every task
    they need is present)."""
    runs: dict[str, list[dict[str, float]]] = {}
    for summary in summaries:
        found = task_metrics(summary)
        if found:
            runs.setdefault(found[0], []).append(found[1])
    if not runs:
        return None
    lines = ["| task | metric(s) | score | runs |", "|---|---|---|---|"]
    scores: dict[str, float] = {}
    for name in TASKS:
        if name not in runs:
            continue
        keys = list(runs[name][0])
        means = {k: statistics.fmean(r[k] for r in runs[name]) for k in keys}
        scores[name] = 100 * statistics.fmean(means.values())
        shown = ", ".join(f"{k} {100 * v:.1f}" for k, v in means.items())
        lines.append(f"| {TASKS[name].folder} | {shown} | {scores[name]:.1f} | {len(runs[name])} |")
    if len(scores) == len(TASKS):
        score = statistics.fmean(scores.values())
        lines.append(f"| **GLUE score** | mean of the 9 task scores | **{score:.1f}** | |")
    eight = [v for k, v in scores.items() if k != "wnli"]
    if len(eight) == len(TASKS) - 1:
        lines.append(f"| avg w/o WNLI | mean of 8 (the paper's tables) | {statistics.fmean(eight):.1f} | |")
    missing = [TASKS[n].folder for n in TASKS if n not in scores]
    note = (f"\nNot in this sweep: {', '.join(missing)} (no GLUE score without every task).\n"
            if missing else "")
    return "\n".join(lines) + "\n" + note


def glue_report(runs: list[Path]) -> str | None:
    import json

    return glue_table([json.loads((r / "summary.json").read_text()) for r in runs])
