"""The paper's convolution variants (ablation, table 3) as mixers: they compose, train, keep the contract."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.nn import functional as F

from convbert import ConfigError, build_model
from convbert.composition import BuildContext
from convbert.kernels.sequence_mask import SequenceMask
from convbert.testing import check_block

VARIANTS = ["dynamic_conv", "lightweight_conv", "conv"]
HIDDEN, VOCAB = 32, 97


def composition(mixer: dict, ffn: dict | None = None) -> dict:
    """A tiny masked-LM model with every dropout off, so that a few steps on one batch must lower the loss."""
    return {
        "hidden_size": HIDDEN,
        "num_layers": 2,
        "embedding": {"name": "bert", "vocab_size": VOCAB, "max_position_embeddings": 40, "dropout": 0.0},
        "layer": {"name": "transformer", "dropout": 0.0, "mixer": mixer,
                  "ffn": ffn or {"name": "dense", "intermediate_size": 48}},
        "head": {"name": "masked_lm", "vocab_size": VOCAB},
    }


def mixed_with(variant: str, **params) -> dict:
    """ConvBERT's mixed attention with its span conv swapped for ``variant``: the paper's ablation."""
    return {"name": "mixed", "num_heads": 4, "head_ratio": 2, "parts": [
        {"name": "self_attention", "dropout": 0.0}, {"name": variant, "kernel_size": 3, **params}]}


def padded_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (4, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[3, 4:] = 0
    labels = ids.masked_fill(mask == 0, -100)
    return ids.masked_fill(mask == 0, 0), mask, labels


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_trains_inside_mixed_attention(variant: str) -> None:
    torch.manual_seed(0)
    model = build_model(composition(mixed_with(variant, mask_padding=True)))
    part = model.convbert.layers[0].mixer.parts[1]
    assert part.block_name == variant and part.output_size == 16  # 2 heads of 8 (HF rule: hidden/2 per part)
    ids, mask, labels = padded_batch()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(6):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1, losses


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_keeps_the_block_contract(fresh_registry, variant: str) -> None:
    check_block(fresh_registry.get("mixer", variant), fresh_registry)
    example = mixed_with(variant, mask_padding=True)
    mixed = dataclasses.replace(fresh_registry.get("mixer", "mixed"), example=example)
    check_block(mixed, fresh_registry)


@pytest.mark.parametrize("variant", VARIANTS)
def test_mask_padding_makes_outputs_independent_of_batching(variant: str) -> None:
    """A sentence alone and the same sentence padded next to a longer one: equal with mask_padding only."""
    ids = torch.randint(1, VOCAB, (1, 5), generator=torch.Generator().manual_seed(3))
    padded = torch.cat([ids, torch.randint(1, VOCAB, (1, 4))], dim=1)  # junk where the mask is 0
    mask = torch.tensor([[1] * 5 + [0] * 4])
    for mask_padding, equal in ((True, True), (False, False)):
        torch.manual_seed(0)
        model = build_model(composition(mixed_with(variant, mask_padding=mask_padding))).eval()
        alone = model(input_ids=ids).logits
        batched = model(input_ids=padded, attention_mask=mask).logits[:, :5]
        assert torch.allclose(alone, batched, atol=1e-5) == equal


def unfold_reference(value: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """The reference's way: a (B, L, heads, head_size, k) window copy, weighted and summed over taps."""
    k = kernel.shape[-1]
    windows = F.pad(value, (0, 0, 0, 0, k // 2, k // 2)).unfold(1, k, 1)
    return (windows * kernel).sum(-1)


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_matches_an_unfolded_convolution(fresh_registry, variant: str) -> None:
    ctx = BuildContext(fresh_registry, 12)
    block = ctx.build("mixer", {"name": variant, "num_heads": 3, "kernel_size": 5}, "mixer")
    for p in block.parameters():
        torch.nn.init.normal_(p)
    hidden = torch.randn(2, 9, 12)
    out, probs = block(hidden, SequenceMask())
    value = block.conv_value(hidden).view(2, 9, 3, 4)
    if variant == "conv":
        kernel = block.weight  # (heads, head_size, k): one kernel per channel
    elif variant == "lightweight_conv":
        kernel = block.weight.softmax(-1)[:, None, :]  # one kernel per head
    else:
        kernel = block.kernel_proj(hidden).view(2, 9, 3, 1, 5).softmax(-1)  # one per position and head
    torch.testing.assert_close(out, unfold_reference(value, kernel).reshape(2, 9, 12))
    assert probs is None and out.shape == (2, 9, block.output_size)


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_output_sees_only_its_k_neighbours(fresh_registry, variant: str) -> None:
    block = BuildContext(fresh_registry, 8).build("mixer", {"name": variant, "kernel_size": 3}, "mixer")
    block.eval()
    hidden = torch.randn(1, 10, 8)
    changed = hidden.clone()
    changed[0, 5] += 1.0
    diff = (block(changed, SequenceMask())[0] - block(hidden, SequenceMask())[0]).abs().sum(-1)[0]
    assert (diff[[4, 5, 6]] > 0).all() and (diff[[0, 1, 2, 3, 7, 8, 9]] == 0).all()


def test_normalised_kernels_average_their_window(fresh_registry) -> None:
    """lightweight and dynamic kernels are softmax weights: constant values stay constant inside the span."""
    for variant in ("lightweight_conv", "dynamic_conv"):
        block = BuildContext(fresh_registry, 8).build("mixer", {"name": variant, "kernel_size": 3}, "mixer")
        torch.nn.init.zeros_(block.conv_value.weight)
        torch.nn.init.constant_(block.conv_value.bias, 2.0)
        out, _ = block(torch.randn(2, 6, 8), SequenceMask())
        torch.testing.assert_close(out[:, 1:-1], torch.full_like(out[:, 1:-1], 2.0))


def test_bottleneck_bert_and_grouped_ffn_are_compositions() -> None:
    """BNK: fewer heads of the same size (the paper's rule), projected back by the layer's ``mixer_out``."""
    bnk = {"name": "mixed", "num_heads": 4, "head_ratio": 2, "head_size_rule": "paper",
           "parts": [{"name": "self_attention"}]}
    bert = {"name": "self_attention", "num_heads": 4}
    ids, mask, labels = padded_batch()
    for mixer, width in ((bnk, HIDDEN // 2), (bert, HIDDEN), (mixed_with("dynamic_conv"), HIDDEN)):
        model = build_model(composition(mixer, {"name": "grouped", "intermediate_size": 48, "num_groups": 2}))
        layer = model.convbert.layers[0]
        assert layer.mixer.output_size == width and layer.mixer_out.in_features == width
        assert torch.isfinite(model(input_ids=ids, attention_mask=mask, labels=labels).loss)


def test_even_kernel_size_is_refused_with_its_path() -> None:
    with pytest.raises(ConfigError, match=r"model\.layer\.mixer\.parts\.1\.kernel_size: must be a positive"):
        build_model(composition(mixed_with("lightweight_conv") | {"parts": [
            {"name": "self_attention"}, {"name": "lightweight_conv", "kernel_size": 4}]}))
