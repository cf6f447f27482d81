"""What convbert loads (entry point ``convbert: extra_mixers``): the blocks and their config dir."""

from __future__ import annotations

from pathlib import Path

from convbert.plugin import hookimpl

from convbert_extra_mixers.fourier import FourierMixer, FourierParams
from convbert_extra_mixers.linear_attention import LinearAttention, LinearAttentionParams

CONFIG_DIR = Path(__file__).resolve().parent / "conf"  # mixer/fourier.yaml ..., added to Hydra's search path


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register("mixer", "fourier", FourierMixer, FourierParams)
    registry.register("mixer", "linear_attention", LinearAttention, LinearAttentionParams,
                      example={"num_heads": 4})
    registry.add_config_dir(CONFIG_DIR)
