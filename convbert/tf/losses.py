"""The task losses of the PyTorch heads, in ``keras.ops`` (same reductions, same ignored labels)."""

from __future__ import annotations

from convbert.labels import IGNORE_INDEX
from convbert.tf.backend import keras, ops

PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")


def cross_entropy(logits, labels, ignore_index: int = IGNORE_INDEX):
    """Mean over the labels that are not ``ignore_index`` of -log softmax(logits)[label].

    ``logits`` (N, C), ``labels`` (N,). With no label left the loss is 0 (PyTorch gives NaN): a batch
    without labelled tokens must not poison a ``fit``.
    """
    labels = ops.cast(labels, "int32")
    keep = labels != ignore_index
    safe = ops.where(keep, labels, 0)
    picked = ops.take_along_axis(ops.log_softmax(logits, axis=-1), safe[:, None], axis=-1)[:, 0]
    keep = ops.cast(keep, logits.dtype)
    return -ops.sum(picked * keep) / ops.maximum(ops.sum(keep), 1.0)


def mse(predictions, targets):
    return ops.mean(ops.square(predictions - ops.cast(targets, predictions.dtype)))


def bce_with_logits(logits, targets):
    """Mean binary cross-entropy, computed stably from logits."""
    z = ops.cast(targets, logits.dtype)
    return ops.mean(ops.relu(logits) - logits * z + ops.log1p(ops.exp(-ops.abs(logits))))


def infer_problem_type(num_labels: int, labels) -> str:
    """Hugging Face's rule: one label -> regression, integer labels -> single-label, else multi-label."""
    if num_labels == 1:
        return "regression"
    if "int" in keras.backend.standardize_dtype(labels.dtype):
        return "single_label_classification"
    return "multi_label_classification"


def sequence_classification_loss(logits, labels, problem_type: str):
    num_labels = logits.shape[-1]
    if problem_type == "regression":
        if num_labels == 1:
            return mse(ops.reshape(logits, (-1,)), ops.reshape(labels, (-1,)))
        return mse(logits, labels)
    if problem_type == "single_label_classification":
        return cross_entropy(ops.reshape(logits, (-1, num_labels)), ops.reshape(labels, (-1,)))
    return bce_with_logits(logits, labels)


def span_loss(start_logits, end_logits, start_positions, end_positions):
    """Mean of the start and end cross-entropies; positions outside the input are clamped and ignored."""
    ignored = start_logits.shape[1]
    if ignored is None:
        ignored = ops.shape(start_logits)[1]
    start = ops.clip(ops.reshape(ops.cast(start_positions, "int32"), (-1,)), 0, ignored)
    end = ops.clip(ops.reshape(ops.cast(end_positions, "int32"), (-1,)), 0, ignored)
    return (cross_entropy(start_logits, start, ignored) + cross_entropy(end_logits, end, ignored)) / 2
