"""The fast paths compute what the plain formulations compute: values, gradients, dtypes, randomness."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import tiny_config_kwargs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

import convbert
from convbert.blocks.ffn import FeedForward
from convbert.blocks.self_attention import _AttentionWithDropout
from convbert.heads import masked_lm
from convbert.heads.masked_lm import vocab_cross_entropy
from convbert.kernels import dropout as fast_dropout
from convbert.kernels.convolution import depthwise_conv, per_position_conv, shifted_taps
from convbert.kernels.linear import Linear
from convbert.kernels.sequence_mask import SequenceMask


def _grads(fn, *tensors, seed: int = 0):
    """fn(*tensors) and the gradients of a fixed random projection of it."""
    leaves = [t.detach().clone().requires_grad_() for t in tensors]
    out = fn(*leaves)
    weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    (out * weight).sum().backward()
    return out.detach(), [t.grad for t in leaves]


@pytest.mark.parametrize("length", [1, 3, 12])
def test_per_position_conv_matches_shifted_taps(length):
    g = torch.Generator().manual_seed(0)
    value = torch.randn(2, length, 3, 4, generator=g, dtype=torch.float64)
    kernel = torch.randn(2, length, 3, 5, generator=g, dtype=torch.float64).softmax(-1)
    out, grads = _grads(per_position_conv, value, kernel)
    ref, ref_grads = _grads(lambda v, k: shifted_taps(v, k.unsqueeze(-2)), value, kernel)
    assert torch.allclose(out, ref)
    for a, b in zip(grads, ref_grads, strict=True):
        assert torch.allclose(a, b)
    assert torch.autograd.gradcheck(per_position_conv, (value.requires_grad_(), kernel.requires_grad_()))


def test_depthwise_conv_matches_shifted_taps():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 10, 6, generator=g)
    weight = torch.randn(6, 9, generator=g)
    out, grads = _grads(depthwise_conv, x, weight)
    ref, ref_grads = _grads(shifted_taps, x, weight)
    assert out.is_contiguous()
    assert torch.allclose(out, ref, atol=1e-6)
    for a, b in zip(grads, ref_grads, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_fast_dropout_drops_p_and_rescales():
    torch.manual_seed(0)
    x = torch.ones(1000, 1000, requires_grad=True)
    y = fast_dropout.dropout(x, 0.1)
    assert abs((y == 0).float().mean().item() - 0.1) < 0.003
    assert torch.allclose(y[y != 0], torch.tensor(1 / 0.9))
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # d/dx of x * keep / (1 - p) is keep / (1 - p)


def test_fast_dropout_follows_the_seed_and_is_identity_when_off():
    x = torch.randn(64, 64)
    torch.manual_seed(3)
    a = fast_dropout.dropout(x, 0.3)
    torch.manual_seed(3)
    b = fast_dropout.dropout(x, 0.3)
    assert torch.equal(a, b)
    assert fast_dropout.dropout(x, 0.3, training=False) is x
    assert torch.equal(fast_dropout.dropout(x, 0.0), x)


def test_dropout_add_is_residual_plus_dropout():
    x, residual = torch.randn(8, 33), torch.randn(8, 33)
    torch.manual_seed(5)
    fused, (grad_x, grad_residual) = _grads(lambda a, r: fast_dropout.dropout_add(a, r, 0.25), x, residual)
    torch.manual_seed(5)
    plain, (ref_x, ref_residual) = _grads(lambda a, r: r + fast_dropout.dropout(a, 0.25), x, residual)
    assert torch.allclose(fused, plain, atol=1e-6)
    assert torch.allclose(grad_x, ref_x) and torch.allclose(grad_residual, ref_residual)


def test_attention_with_dropout_matches_the_explicit_formula():
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, 3, 7, 4, generator=g, dtype=torch.float64) for _ in range(3))
    keep = torch.ones(2, 7)
    keep[1, 5:] = 0
    additive = SequenceMask.from_attention_mask(keep, torch.float64).additive
    p = 0.2

    def reference(q, k, v):
        torch.manual_seed(7)
        probs = (q @ k.transpose(-1, -2) / math.sqrt(4) + additive).softmax(-1)
        mask = fast_dropout.keep_mask(probs.shape, p)
        return (probs * mask / (1 - p)) @ v

    def fused(q, k, v):
        torch.manual_seed(7)
        return _AttentionWithDropout.apply(q, k, v, additive, p)

    out, grads = _grads(fused, q, k, v)
    ref, ref_grads = _grads(reference, q, k, v)
    assert torch.allclose(out, ref)
    for a, b in zip(grads, ref_grads, strict=True):
        assert torch.allclose(a, b)


def test_vocab_cross_entropy_matches_torch():
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(3, 5, 50, generator=g)
    labels = torch.randint(0, 50, (3, 5), generator=g)
    labels[0, :3] = -100
    loss, (grad,) = _grads(lambda x: vocab_cross_entropy(x, labels), logits)
    ref, (ref_grad,) = _grads(lambda x: F.cross_entropy(x.view(-1, 50), labels.view(-1)), logits)
    assert torch.allclose(loss, ref, atol=1e-6)
    assert torch.allclose(grad, ref_grad, atol=1e-7)
    assert torch.isnan(vocab_cross_entropy(logits, torch.full_like(labels, -100)))  # as F.cross_entropy


@pytest.mark.parametrize("groups", [1, 2])
def test_ffn_recomputed_activation_gives_the_same_gradients(groups):
    torch.manual_seed(0)
    ffn = FeedForward(8, 12, groups, "gelu", "ffn")
    x = torch.randn(2, 5, 8)
    out, (grad,) = _grads(ffn, x)
    params = [p.grad.clone() for p in ffn.parameters()]
    ffn.zero_grad()
    ref, (ref_grad,) = _grads(lambda t: ffn.down(ffn.act(ffn.up(t))), x)
    assert torch.allclose(out, ref, atol=1e-6)
    assert torch.allclose(grad, ref_grad, atol=1e-6)
    for a, p in zip(params, ffn.parameters(), strict=True):
        assert torch.allclose(a, p.grad, atol=1e-6)


def test_no_attention_mask_means_no_additive_mask():
    assert SequenceMask.from_attention_mask(None, torch.float32).additive is None


def test_training_step_is_reproducible_with_dropout(batch):
    ids, mask, _ = batch
    model = convbert.ConvBertForMaskedLM(convbert.ConvBertConfig(**tiny_config_kwargs())).train()
    labels = torch.where(ids % 3 == 0, ids, -100)
    losses = []
    for _ in range(2):
        torch.manual_seed(11)
        losses.append(model(input_ids=ids, attention_mask=mask, labels=labels).loss)
    assert torch.isfinite(losses[0]) and torch.equal(losses[0], losses[1])


@pytest.mark.parametrize("num_groups", [1, 2])
def test_bf16_autocast_forward_and_backward_on_cpu(batch, num_groups):
    ids, mask, types = batch
    torch.manual_seed(0)
    config = convbert.ConvBertConfig(**tiny_config_kwargs(num_groups=num_groups, hidden_dropout_prob=0.0,
                                                          attention_probs_dropout_prob=0.0))
    model = convbert.ConvBertForMaskedLM(config).train()
    labels = torch.where(ids % 2 == 0, ids, -100)
    args = dict(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels)
    ref = model(**args)
    ref.loss.backward()
    ref_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**args)
    out.loss.backward()
    assert out.logits.dtype == torch.bfloat16
    assert torch.isfinite(out.loss) and abs(out.loss.item() - ref.loss.item()) < 0.05 * ref.loss.item()
    assert (out.logits.float() - ref.logits).abs().max() < 0.1
    for name, p in model.named_parameters():
        assert p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all(), name
        scale = ref_grads[name].abs().max().item() + 1e-6
        assert (p.grad - ref_grads[name]).abs().max().item() < 0.1 * scale, name


def test_bf16_autocast_training_with_dropout_is_finite(batch):
    ids, mask, _ = batch
    torch.manual_seed(0)
    model = convbert.ConvBertForMaskedLM(convbert.ConvBertConfig(**tiny_config_kwargs())).train()
    labels = torch.where(ids % 2 == 0, ids, -100)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels, logits_at_labels_only=True).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("library", ["onednn", "plain"])
@pytest.mark.parametrize(("n_in", "n_out"), [(8, 24), (24, 8)])  # both orientations of the weight gradient
def test_linear_matches_f_linear_on_either_library(n_in, n_out, library, pin_kernels):
    pin_kernels(f"linear={library}")
    torch.manual_seed(0)
    layer = Linear(n_in, n_out)
    x = torch.randn(2, 5, n_in)
    out, (grad,) = _grads(layer, x)
    params = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    ref, (ref_grad,) = _grads(lambda t: F.linear(t, layer.weight, layer.bias), x)
    assert torch.allclose(out, ref, atol=1e-6) and torch.allclose(grad, ref_grad, atol=1e-6)
    for a, p in zip(params, layer.parameters(), strict=True):
        assert torch.allclose(a, p.grad, atol=1e-5)
    assert isinstance(layer, torch.nn.Linear) and set(layer.state_dict()) == {"weight", "bias"}


@pytest.mark.parametrize("activation", ["gelu", "relu", "gelu_pytorch_tanh"])
def test_inference_ffn_with_fused_activation_matches_eager(activation, pin_kernels):
    pin_kernels("linear_act=onednn")
    torch.manual_seed(0)
    ffn = FeedForward(8, 12, 1, activation, "ffn").eval()
    x = torch.randn(2, 5, 8)
    with torch.no_grad():
        fused = ffn(x)
    assert torch.allclose(fused, ffn.down(ffn.act(ffn.up(x))).detach(), atol=1e-5)


_SELECT_LABELLED = masked_lm._labelled


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(1, 12), labelled=st.sampled_from(["none", "some", "all", "one", "tail"]),
       chunk=st.integers(1, 5), grads=st.sampled_from(["loss", "logits", "both"]), selects=st.booleans(),
       seed=st.integers(0, 99))
def test_cross_entropy_over_labelled_rows_only_is_torchs(monkeypatch, rows, labelled, chunk, grads, selects,
                                                         seed):
    """Reading only the labelled rows (forward and backward, in any chunking) gives F.linear +
    F.cross_entropy's loss and gradients for every labelling: none (nan loss, as torch), all (consecutive
    rows, taken as a view), one, a consecutive tail, or a random subset; with a gradient on the loss, on
    the returned logits, or both. Off the CPU no row is selected (``selects=False``: every row is read and
    the unlabelled ones weighted 0); the fused decoder is CPU only."""
    vocab = 7
    every_row = (lambda labels: (None, labels)) if not selects else _SELECT_LABELLED
    monkeypatch.setattr(masked_lm, "_labelled", every_row)
    monkeypatch.setattr(masked_lm, "_GRAD_CHUNK_ELEMENTS", chunk * vocab)
    monkeypatch.setattr(masked_lm, "_CHUNK_ELEMENTS", chunk * vocab)
    g = torch.Generator().manual_seed(seed)
    x, weight = torch.randn(rows, 5, generator=g), torch.randn(vocab, 5, generator=g)
    bias = torch.randn(vocab, generator=g)
    labels = torch.randint(0, vocab, (rows,), generator=g)
    keep = {"none": torch.zeros(rows, dtype=torch.bool), "all": torch.ones(rows, dtype=torch.bool),
            "one": torch.arange(rows) == rows // 2, "tail": torch.arange(rows) >= rows // 2,
            "some": torch.rand(rows, generator=g) < 0.4}[labelled]
    labels = torch.where(keep, labels, -100)
    probe = torch.randn(rows, vocab, generator=g)

    def run(fn, *inputs):
        leaves = [t.clone().requires_grad_() for t in inputs]
        logits, loss = fn(*leaves)
        total = (loss if grads != "logits" else 0) + ((logits * probe).sum() if grads != "loss" else 0)
        if grads == "loss" and not keep.any():
            total = loss.nan_to_num(0.0)  # no labelled row: torch's gradient is 0 (as ours), not nan
        total.backward()
        return [logits.detach(), loss.detach()] + [t.grad for t in leaves]

    def reference(a, w, b):
        logits = F.linear(a, w, b)
        return logits, F.cross_entropy(logits, labels)

    ref = run(reference, x, weight, bias)
    apart = run(lambda a, w, b: (lambda lg: (lg, vocab_cross_entropy(lg, labels)))(F.linear(a, w, b)),
                x, weight, bias)
    results = [apart]
    if selects:  # the fused decoder runs on the CPU only, where the labelled rows are selected
        fused = masked_lm._DecoderCrossEntropy.apply
        results.append(run(lambda a, w, b: fused(a, w, b, labels), x, weight, bias))
    for ours in results:
        for a, b in zip(ours, ref, strict=True):
            assert torch.allclose(a, b, atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("library", ["onednn", "plain"])
@pytest.mark.parametrize("groups", [2, 4])
def test_grouped_linear_matches_the_block_diagonal_product(groups, library, pin_kernels):
    from convbert.blocks.ffn import GroupedLinear

    pin_kernels(f"linear={library}")
    torch.manual_seed(0)
    layer = GroupedLinear(8, 12, groups)
    torch.nn.init.normal_(layer.bias)
    x = torch.randn(2, 5, 8)
    out, (grad,) = _grads(layer, x)
    params = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    dense = torch.block_diag(*layer.weight)  # (in, out)
    ref, (ref_grad,) = _grads(lambda t: t @ torch.block_diag(*layer.weight) + layer.bias, x)
    assert torch.allclose(out, ref, atol=1e-6) and torch.allclose(grad, ref_grad, atol=1e-6)
    for a, p in zip(params, layer.parameters(), strict=True):
        assert torch.allclose(a, p.grad, atol=1e-5)
    assert dense.shape == (8, 12)


@pytest.mark.parametrize("logits_grad", [False, True])
def test_fused_decoder_cross_entropy_matches_linear_then_cross_entropy(monkeypatch, logits_grad):
    """The chunked backward (here 7 chunks) gives F.linear + F.cross_entropy's gradients, also when the
    returned logits carry a gradient of their own."""
    monkeypatch.setattr(masked_lm, "_GRAD_CHUNK_ELEMENTS", 3 * 50)
    g = torch.Generator().manual_seed(0)
    x, weight = torch.randn(20, 8, generator=g), torch.randn(50, 8, generator=g)
    bias = torch.randn(50, generator=g)
    labels = torch.randint(0, 50, (20,), generator=g)
    labels[::3] = -100
    probe = torch.randn(20, 50, generator=g)

    def loss_of(fn):
        leaves = [t.clone().requires_grad_() for t in (x, weight, bias)]
        logits, loss = fn(*leaves)
        total = loss + ((logits * probe).sum() if logits_grad else 0)
        total.backward()
        return logits.detach(), loss.detach(), [t.grad for t in leaves]

    ours = loss_of(lambda a, w, b: masked_lm._DecoderCrossEntropy.apply(a, w, b, labels))
    ref = loss_of(lambda a, w, b: (F.linear(a, w, b), F.cross_entropy(F.linear(a, w, b), labels)))
    assert torch.allclose(ours[0], ref[0], atol=1e-5) and torch.allclose(ours[1], ref[1], atol=1e-6)
    for a, b in zip(ours[2], ref[2], strict=True):
        assert torch.allclose(a, b, atol=1e-5)
