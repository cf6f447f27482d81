"""Masked-LM head: the ELECTRA/ConvBERT generator prediction head, decoder tied to the word embeddings."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from convbert.activations import Activation
from convbert.capture import capturing
from convbert.hookspecs import hookimpl
from convbert.kernels import linear as fast_linear
from convbert.kernels.linear import Linear
from convbert.kernels.recycle import RecycledOutputs
from convbert.labels import IGNORE_INDEX
from convbert.outputs import MaskedLMOutput

_CHUNK_ELEMENTS = 1 << 24  # logits rows copied at once for the log-sum-exp (64 MB in fp32)
_GRAD_CHUNK_ELEMENTS = 1 << 23  # rows of the logits' gradient alive at once in backward (32 MB)


def _row_chunks(count: int, width: int, elements: int) -> list[slice]:
    rows = max(1, elements // width)
    return [slice(start, start + rows) for start in range(0, count, rows)]


def _labelled(labels: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(rows, targets). On the CPU: the positions with a label != -100, ascending, and their labels. Elsewhere
    None (every row) and all the labels, -100 included: selecting there would cost a host sync per step."""
    if labels.device.type != "cpu":
        return None, labels
    rows = (labels != IGNORE_INDEX).nonzero().squeeze(1)
    return rows, labels.index_select(0, rows)


def _pick(logits: torch.Tensor, rows: torch.Tensor | None, part: slice) -> tuple[torch.Tensor, bool]:
    """(logits at ``rows[part]``, whether that is a copy): a view where those rows are consecutive (all the
    pretraining head's logits are labelled), else a gathered copy."""
    if rows is None:
        return logits[part], False
    rows = rows[part]
    first, last = (int(rows[0]), int(rows[-1])) if rows.numel() else (0, -1)
    if last - first + 1 == rows.numel():
        return logits[first:last + 1], False
    return logits.index_select(0, rows), True


def _mean_loss(logits: torch.Tensor, rows: torch.Tensor | None, targets: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, lse, count): the mean cross-entropy over the labelled rows of (N, V) logits, their fp32
    log-sum-exp and their number, for backward. Given ``rows``, the unlabelled rows (85% under BERT's masking)
    are never read: their gradient is 0.

    Through log_softmax (one fused kernel), 64 MB of rows at a time: lse = x[t] - log_softmax(x)[t].
    """
    lse = logits.new_empty(targets.shape, dtype=torch.float32)
    nll = torch.empty_like(lse)
    safe = targets.clamp(min=0)  # -100 is there only without ``rows``; it is weighted out below
    for part in _row_chunks(targets.numel(), logits.shape[1], _CHUNK_ELEMENTS):
        (picked, _), target = _pick(logits, rows, part), safe[part, None]
        nll[part] = torch.log_softmax(picked, 1, dtype=torch.float32).gather(1, target).squeeze(1).neg_()
        lse[part] = picked.gather(1, target).squeeze(1).float() + nll[part]
    valid = targets != IGNORE_INDEX
    count = valid.sum()
    return nll.where(valid, 0.0).sum() / count, lse, count  # 0 / 0 = nan if nothing is labelled, as torch


def _loss_grad(logits: torch.Tensor, rows: torch.Tensor | None, targets: torch.Tensor, lse: torch.Tensor,
               scale: torch.Tensor, part: slice) -> torch.Tensor:
    """d loss / d logits at ``rows[part]``: (softmax - one-hot) * scale, 0 where unlabelled; logits' dtype."""
    picked, copied = _pick(logits, rows, part)
    grad = picked.float().sub_(lse[part, None]) if copied else picked.float() - lse[part, None]
    grad.exp_()
    target = targets[part, None]
    grad.scatter_add_(1, target.clamp(min=0), grad.new_full(target.shape, -1.0))
    return grad.mul_((target != IGNORE_INDEX) * scale).to(logits.dtype)


class _VocabCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy over the labelled rows of (N, V) logits, saving only the logits and (n,) numbers.

    ``F.cross_entropy`` keeps an (N, V) log-softmax for backward, and its backward allocates two more (N, V)
    tensors (a zero-filled gradient of the log-probabilities, then that of the logits) and goes over every
    row: at 4096 tokens and a 30522-word vocabulary each is 500 MB. Here forward and backward read the logits
    in chunks (on the CPU only the labelled rows), and backward writes one (N, V) gradient.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        rows, targets = _labelled(labels)
        loss, lse, count = _mean_loss(logits, rows, targets)
        ctx.save_for_backward(logits, rows, targets, lse, count)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        logits, rows, targets, lse, count = ctx.saved_tensors
        scale = grad / count.clamp(min=1)
        out = torch.empty_like(logits) if rows is None else torch.zeros_like(logits)
        for part in _row_chunks(targets.numel(), logits.shape[1], _GRAD_CHUNK_ELEMENTS):
            grad_part = _loss_grad(logits, rows, targets, lse, scale, part)
            if rows is None:
                out[part] = grad_part
            else:
                out.index_copy_(0, rows[part], grad_part)
        return out, None


class _DecoderCrossEntropy(torch.autograd.Function):
    """(logits, loss) of the vocabulary projection x @ W.T + b and its mean cross-entropy, in one function.
    CPU only (``fast_linear.eligible``).

    Apart, backward holds the whole (N, V) gradient of the logits (125 MB for 8 x 128 tokens and a
    30522-word vocabulary, 500 MB at 512) and multiplies all of it, though only the labelled rows (15%) are
    not zero. Together, backward takes the labelled rows alone, 32 MB at a time: each chunk's
    softmax-minus-one-hot gives its share of the input, weight and bias gradients and is dropped. A gradient
    arriving for the returned logits themselves is added (then every row takes part).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, labels: torch.Tensor,
                outputs: RecycledOutputs | None = None):
        ctx.set_materialize_grads(False)
        spare = None if outputs is None else outputs.take((x.shape[0], weight.shape[0]), x.dtype, x.device)
        if spare is not None:
            logits = fast_linear.product_into(spare, x, weight, bias)
        else:
            logits = fast_linear.product(x, weight, bias)
            if outputs is not None:
                outputs.keep(logits)
        rows, targets = _labelled(labels)
        loss, lse, count = _mean_loss(logits, rows, targets)
        ctx.save_for_backward(x, weight, logits, rows, targets, lse, count)
        return logits, loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_logits: torch.Tensor | None, grad_loss: torch.Tensor | None):
        x, weight, logits, rows, targets, lse, count = ctx.saved_tensors
        scale = None if grad_loss is None else grad_loss / count.clamp(min=1)
        grad_x = torch.zeros_like(x)
        grad_weight = grad_bias = None  # the first chunk writes them (no 16 MB zero fill first)
        dense = grad_logits is not None  # then every row has a gradient, else only the labelled ones
        touched = torch.arange(logits.shape[0]) if dense else rows if scale is not None else rows[:0]
        for part in _row_chunks(touched.numel(), logits.shape[1], _GRAD_CHUNK_ELEMENTS):
            at = touched[part]
            if dense:
                grad = grad_logits[part].clone()
                lo, hi = torch.searchsorted(rows, torch.tensor([part.start, part.stop])).tolist()
                if scale is not None and hi > lo:
                    grad.index_add_(0, rows[lo:hi] - part.start,
                                    _loss_grad(logits, rows, targets, lse, scale, slice(lo, hi)))
            else:
                grad = _loss_grad(logits, rows, targets, lse, scale, part)
            grad_x.index_copy_(0, at, fast_linear.input_grad(grad, weight))
            if grad_weight is None:
                grad_weight, grad_bias = torch.mm(grad.t(), x.index_select(0, at)), grad.sum(0)
            else:
                grad_weight.addmm_(grad.t(), x.index_select(0, at))
                grad_bias.add_(grad.sum(0))
        if grad_weight is None:
            grad_weight, grad_bias = torch.zeros_like(weight), weight.new_zeros(weight.shape[0])
        return grad_x, grad_weight, grad_bias, None, None


def vocab_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``F.cross_entropy(logits.float(), labels)`` (mean over labels != -100) for a large vocabulary.

    Under ``torch.compile`` it is ``F.cross_entropy``, which inductor fuses on its own.
    """
    if capturing():
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1))
    return _VocabCrossEntropy.apply(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


@dataclass
class MaskedLMParams:
    vocab_size: int = 30522
    embedding_size: int | None = None  # None: the embedding block's size
    activation: str = "gelu"  # Hugging Face's ConvBERT uses GELU here whatever hidden_act says
    tie_word_embeddings: bool = True


class MaskedLMHead(nn.Module):
    """(B, L, H) -> (B, L, V) logits; with ``logits_at_labels_only`` only the labelled rows (N, V).

    Pretraining labels ~15% of the tokens, so computing the vocabulary projection there alone saves most of
    the head's time and memory; the loss is the same number.
    """

    def __init__(self, params: MaskedLMParams, ctx) -> None:
        super().__init__()
        word = ctx.shared.get("word_embeddings")
        size = params.embedding_size or (word.embedding_dim if word is not None else ctx.hidden_size)
        self.vocab_size = params.vocab_size
        self.dense = Linear(ctx.hidden_size, size)
        self.act = Activation(params.activation)
        self.norm = nn.LayerNorm(size, eps=ctx.layer_norm_eps)
        self.decoder = Linear(size, params.vocab_size)
        self.tie_word_embeddings = params.tie_word_embeddings
        self._logits_memory = RecycledOutputs()  # the training logits' memory, reused step to step
        if params.tie_word_embeddings and word is not None:
            self.decoder.weight = word.weight

    def train(self, mode: bool = True) -> MaskedLMHead:
        if not mode:  # evaluation and inference need no spare logits: give their memory back
            self._logits_memory.clear()
        return super().train(mode)

    def forward(
        self,
        sequence_output: torch.Tensor,
        labels: torch.Tensor | None = None,
        logits_at_labels_only: bool = False,
    ) -> MaskedLMOutput:
        if labels is not None and logits_at_labels_only:
            selected = labels != IGNORE_INDEX
            sequence_output, labels = sequence_output[selected], labels[selected]
        transformed = self.norm(self.act(self.dense(sequence_output)))
        decoder = self.decoder
        hooked = decoder._forward_hooks or decoder._forward_pre_hooks
        if labels is not None and torch.is_grad_enabled() and decoder.bias is not None and not hooked \
                and fast_linear.eligible(transformed, decoder.weight):
            flat = transformed.reshape(-1, transformed.shape[-1])
            logits, loss = _DecoderCrossEntropy.apply(flat, decoder.weight, decoder.bias, labels.reshape(-1),
                                                      self._logits_memory)
            return MaskedLMOutput(loss=loss, logits=logits.view(*transformed.shape[:-1], -1))
        logits = decoder(transformed)
        loss = None
        if labels is not None:
            loss = vocab_cross_entropy(logits, labels)
        return MaskedLMOutput(loss=loss, logits=logits)


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register(
        "head", "masked_lm", MaskedLMHead, MaskedLMParams,
        config_fields={"tie_word_embeddings": "tie_word_embeddings"},
        from_config=lambda c: {"vocab_size": c.vocab_size, "embedding_size": c.embedding_size,
                               "tie_word_embeddings": bool(c.tie_word_embeddings)},
    )
