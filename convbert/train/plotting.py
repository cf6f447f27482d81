"""Loss curves as a PNG: one panel per stage, training losses as lines and dev losses as dots.

Uses matplotlib's object API with the Agg canvas, so it never needs a display and never changes the
process-wide backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

LOSS_KEYS = ("loss", "generator_loss", "discriminator_loss")


def plot_history(records: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Draw ``records`` (metrics.jsonl) into ``path``; returns the path."""
    stages = list(dict.fromkeys(r["stage"] for r in records)) or ["(no steps)"]
    fig = Figure(figsize=(5.5 * len(stages), 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(stages), squeeze=False)[0]
    for ax, stage in zip(axes, stages, strict=True):
        train = [r for r in records if r["stage"] == stage and r["split"] == "train"]
        dev = [r for r in records if r["stage"] == stage and r["split"] == "dev"]
        for key in LOSS_KEYS:
            points = [(r["step"], r[key]) for r in train if key in r]
            if points:
                name = key.replace("_", " ")
                ax.plot(*zip(*points, strict=True), label=f"train {name}", lw=1.5 if key == "loss" else 1)
            points = [(r["step"], r[key]) for r in dev if key in r]
            if points:
                ax.plot(*zip(*points, strict=True), "o", ms=5, label=f"dev {key.replace('_', ' ')}")
        task = (train or dev or [{}])[0].get("task", "")
        ax.set_title(f"{stage}: {task}" if task else stage)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        losses = [r["loss"] for r in train if "loss" in r]
        if losses and min(losses) > 0 and max(losses) > 20:  # RTD's weighted loss spans decades
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)
    return path
