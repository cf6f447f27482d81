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
from convbert.labels import IGNORE_INDEX
from convbert.outputs import MaskedLMOutput

_CHUNK_ELEMENTS = 1 << 24  # rows of logits handled at once when computing the log-sum-exp (64 MB in fp32)
_GRAD_CHUNK_ELEMENTS = 1 << 23  # rows of the logits' gradient alive at once in the fused backward (32 MB)


def _log_sum_exp(logits: torch.Tensor) -> torch.Tensor:
    """(N, V) -> (N,) fp32 log-sum-exp in 64 MB chunks, through log_softmax (one fused kernel):
    lse = x[:, 0] - log_softmax(x)[:, 0]."""
    rows = max(1, _CHUNK_ELEMENTS // logits.shape[1])
    return torch.cat([c[:, 0].float() - torch.log_softmax(c, 1, dtype=torch.float32)[:, 0]
                      for c in logits.split(rows)])


def _mean_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(loss, safe labels, valid mask, count) of the mean cross-entropy over labels != -100."""
    valid = labels != IGNORE_INDEX
    safe = torch.where(valid, labels, 0)
    target = logits.gather(1, safe[:, None]).squeeze(1).float()
    count = valid.sum()
    loss = torch.where(valid, _log_sum_exp(logits) - target, 0.0).sum() / count
    return loss, safe, valid, count


def _loss_grad(logits: torch.Tensor, safe: torch.Tensor, valid: torch.Tensor, scale: torch.Tensor
               ) -> torch.Tensor:
    """d loss / d logits for rows of logits: (softmax - one-hot) * scale on labelled rows, 0 elsewhere."""
    grad = torch.softmax(logits, 1)  # fp32 accumulation inside, output in the logits' dtype
    grad.scatter_add_(1, safe[:, None], -valid.to(grad.dtype)[:, None])
    return grad.mul_((valid * scale).to(grad.dtype)[:, None])


class _VocabCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy over the labelled rows of (N, V) logits, saving only the logits and (N,) numbers.

    ``F.cross_entropy`` keeps an (N, V) log-softmax for backward, and its backward allocates two more (N, V)
    tensors (a zero-filled gradient of the log-probabilities, then that of the logits): at 4096 tokens and a
    30522-word vocabulary each is 500 MB. Here forward makes only 64 MB chunks and backward one (N, V)
    tensor, softmax minus one-hot, scaled in place.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss, safe, valid, count = _mean_loss(logits, labels)
        ctx.save_for_backward(logits, safe, valid, count)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        logits, safe, valid, count = ctx.saved_tensors
        return _loss_grad(logits, safe, valid, grad / count.clamp(min=1)), None


class _DecoderCrossEntropy(torch.autograd.Function):
    """(logits, loss) of the vocabulary projection x @ W.T + b and its mean cross-entropy, in one function.

    Apart, backward holds the whole (N, V) gradient of the logits (125 MB for 8 x 128 tokens and a
    30522-word vocabulary, 500 MB at 512) while the projection's products run. Together it goes through the
    rows in 32 MB chunks: each chunk's softmax-minus-one-hot is used for its share of the input, weight
    and bias gradients and dropped. A gradient arriving for the returned logits themselves is added.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, labels: torch.Tensor):
        ctx.set_materialize_grads(False)
        logits = fast_linear.product(x, weight, bias)
        loss, safe, valid, count = _mean_loss(logits, labels)
        ctx.save_for_backward(x, weight, logits, safe, valid, count)
        return logits, loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_logits: torch.Tensor | None, grad_loss: torch.Tensor | None):
        x, weight, logits, safe, valid, count = ctx.saved_tensors
        grad_x = torch.empty_like(x)
        grad_weight = torch.zeros_like(weight)
        grad_bias = torch.zeros(weight.shape[0], dtype=weight.dtype)
        scale = None if grad_loss is None else grad_loss / count.clamp(min=1)
        rows = max(1, _GRAD_CHUNK_ELEMENTS // logits.shape[1])
        for start in range(0, logits.shape[0], rows):
            part = slice(start, start + rows)
            if scale is not None:
                grad = _loss_grad(logits[part], safe[part], valid[part], scale)
                if grad_logits is not None:
                    grad.add_(grad_logits[part])
            else:
                grad = grad_logits[part].contiguous()
            grad_x[part] = fast_linear.input_grad(grad, weight)
            grad_weight.addmm_(grad.t(), x[part])
            grad_bias.add_(grad.sum(0))
        return grad_x, grad_weight, grad_bias, None


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
        if params.tie_word_embeddings and word is not None:
            self.decoder.weight = word.weight

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
            logits, loss = _DecoderCrossEntropy.apply(flat, decoder.weight, decoder.bias, labels.reshape(-1))
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
