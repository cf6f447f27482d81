"""Batch invariance: with conv_mask_padding a sentence's outputs do not depend on its batch's padding."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config_kwargs

import convbert


def _alone_vs_padded(mask_padding: bool, extra: int = 9) -> float:
    torch.manual_seed(0)
    config = convbert.ConvBertConfig(**tiny_config_kwargs(conv_mask_padding=mask_padding, conv_kernel_size=9))
    model = convbert.ConvBertModel(config).eval()
    with torch.no_grad():  # pad embeddings are not zero in a trained model
        model.embeddings.word.weight[0].normal_()
    sentence = torch.randint(1, 97, (1, 10))
    padded = torch.cat([sentence, torch.zeros(1, extra, dtype=torch.long)], dim=1)
    mask = (padded != 0).long()
    with torch.no_grad():
        alone = model(sentence).last_hidden_state
        batched = model(padded, attention_mask=mask).last_hidden_state[:, :10]
    return (alone - batched).abs().max().item()


def test_masked_convolution_is_batch_invariant():
    assert _alone_vs_padded(mask_padding=True) < 1e-5


def test_reference_convolution_sees_padding():
    """The reference behaviour (default, for parity with released weights) leaks padding into outputs."""
    assert _alone_vs_padded(mask_padding=False) > 1e-3


@pytest.mark.parametrize("extra", [1, 4, 30])
def test_invariance_holds_for_any_amount_of_padding(extra):
    assert _alone_vs_padded(mask_padding=True, extra=extra) < 1e-5
