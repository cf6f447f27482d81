"""convbert-sentiment-intensity: a fine-tuning task added to convbert from this package alone."""

from __future__ import annotations

from typing import Any

__all__ = ["SentimentIntensity"]


def __getattr__(name: str) -> Any:  # the task loads on use: importing the package imports no training code
    if name == "SentimentIntensity":
        from convbert_sentiment_intensity.task import SentimentIntensity

        return SentimentIntensity
    raise AttributeError(name)
