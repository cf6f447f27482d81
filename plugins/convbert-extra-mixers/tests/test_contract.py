"""The plugin's blocks pass convbert's block contract (``convbert.testing``), as every built-in does."""

from __future__ import annotations

import pytest
import torch
from convbert.plugin import Registry, check_block

import convbert_extra_mixers.plugin


@pytest.fixture(scope="module")
def registry() -> Registry:
    registry = Registry()
    registry.load_builtins()
    registry.register_plugin(convbert_extra_mixers.plugin, "convbert_extra_mixers.plugin")
    return registry


@pytest.mark.parametrize("name", ["fourier", "linear_attention"])
def test_contract(registry: Registry, name: str) -> None:
    check_block(registry.get("mixer", name), registry)


def test_fourier_equals_fft2_of_the_unpadded_sentence(registry: Registry) -> None:
    from convbert import SequenceMask
    from convbert.composition import BuildContext

    mixer = BuildContext(registry, 8).build("mixer", {"name": "fourier", "project": False}, "mixer")
    x = torch.randn(2, 6, 8)
    keep = torch.tensor([[1.0] * 6, [1.0] * 4 + [0.0] * 2])
    out, _ = mixer(x, SequenceMask.from_attention_mask(keep, x.dtype))
    torch.testing.assert_close(out[1, :4], torch.fft.fft2(x[1, :4]).real, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out[0], torch.fft.fft2(x[0]).real, atol=1e-4, rtol=1e-4)
