"""What convbert loads (entry point ``convbert: sentiment_intensity``): the task and its config dir."""

from __future__ import annotations

from pathlib import Path

from convbert.plugin import hookimpl

CONFIG_DIR = Path(__file__).resolve().parent / "conf"  # task/ and data/ options, added to Hydra's search path


@hookimpl
def convbert_register_tasks(registry) -> None:
    """The training side only: building a model never imports the task (nor convbert's training package)."""
    from convbert_sentiment_intensity.task import SentimentIntensity

    registry.register_task(SentimentIntensity)
    registry.add_config_dir(CONFIG_DIR)
