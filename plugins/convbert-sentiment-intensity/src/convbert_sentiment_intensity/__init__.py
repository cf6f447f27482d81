"""convbert-sentiment-intensity: a fine-tuning task added to convbert from this package alone."""

from convbert_sentiment_intensity.task import SentimentIntensity

__all__ = ["SentimentIntensity"]
