"""Extra token mixers for convbert, found through the ``convbert`` entry point (see ``plugin``)."""

from convbert_extra_mixers.fourier import FourierMixer, FourierParams
from convbert_extra_mixers.linear_attention import LinearAttention, LinearAttentionParams

__all__ = ["FourierMixer", "FourierParams", "LinearAttention", "LinearAttentionParams"]
