"""FNet's Fourier token mixer (Lee-Thorp et al. 2021): the real part of a 2D DFT over sequence and hidden.

FNet transforms the whole padded sequence, so a sentence's output changes with the length it is padded
to. With ``mask_padding`` (default) each sequence is transformed over its own real tokens only: the
hidden-axis FFT is per token anyway, and the sequence-axis DFT becomes a (B, L, L) matrix built from each
sequence's length (FNet itself uses DFT matrices on TPUs for short sequences). The result equals
``fft2`` of the unpadded sentence, so outputs at real tokens do not depend on padding; the cost is
O(B L^2 W), as attention. Without padding, or with ``mask_padding=false``, it is ``torch.fft.fft2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from convbert.plugin import ConfigError, SequenceMask, head_layout
from torch import nn


@dataclass
class FourierParams:
    num_heads: int | None = None  # with head_size: the width of the projected values (filled by mixed)
    head_size: int | None = None
    # True: mix a linear projection of the input (values), as every mixer here, so that as a part of
    # `mixed` the width follows the head split. False: the input itself, exactly FNet (no parameters,
    # width = hidden_size).
    project: bool = True
    mask_padding: bool = True  # DFT over each sequence's real tokens: outputs independent of batch padding


def sequence_dft(keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin parts, (B, L, L) each, of every sequence's DFT over its real tokens (zero elsewhere).

    Positions count real tokens only (left or right padding alike); the angle's integer part is reduced
    modulo the length first, so it stays exact in float32 for long sequences.
    """
    real = keep > 0
    index = real.long().cumsum(-1) - 1  # (B, L): position among the sequence's real tokens
    length = real.sum(-1).clamp(min=1)[:, None, None]  # (B, 1, 1)
    turns = (index[:, :, None] * index[:, None, :]) % length  # (B, L, L)
    angle = turns.to(torch.float32) * (2 * math.pi) / length
    both = (real[:, :, None] & real[:, None, :]).to(torch.float32)
    return angle.cos() * both, angle.sin() * both


class FourierMixer(nn.Module):
    """(B, L, H) -> (B, L, W): Re(DFT over sequence and channels) of the values (or of the input)."""

    def __init__(self, params: FourierParams, ctx) -> None:
        super().__init__()
        hidden = ctx.hidden_size
        heads, size = head_layout(params.num_heads, params.head_size, hidden)
        self.output_size = heads * size
        if not params.project and self.output_size != hidden:
            raise ConfigError(
                f"{ctx.path}.project: fourier with project=false mixes the input itself, so its width is "
                f"hidden_size ({hidden}), not num_heads * head_size ({self.output_size}); set project=true "
                "to follow a head split (e.g. as a part of `mixed` with a head_ratio)"
            )
        self.value = nn.Linear(hidden, self.output_size) if params.project else None
        self.mask_padding = params.mask_padding

    def forward(
        self, hidden: torch.Tensor, mask: SequenceMask, output_attentions: bool = False,
        shared: dict | None = None,
    ) -> tuple[torch.Tensor, None]:
        x = self.value(hidden) if self.value is not None else hidden
        x = x.float()  # FFTs want float32 (no half precision on CPU)
        if mask.keep is None or not self.mask_padding:
            return torch.fft.fft2(x, dim=(1, 2)).real.to(hidden.dtype), None
        spectrum = torch.fft.fft(mask.zero_padding(x), dim=-1)  # along channels: per token
        cos, sin = sequence_dft(mask.keep)
        with torch.autocast(x.device.type, enabled=False):  # float32, as the FFT path
            out = cos @ spectrum.real + sin @ spectrum.imag  # Re((C - iS)(A + iB)), (B, L, W)
        return out.to(hidden.dtype), None

    def extra_repr(self) -> str:
        return f"width={self.output_size}, project={self.value is not None}, mask_padding={self.mask_padding}"
