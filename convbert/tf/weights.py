"""Keras variables under Hugging Face's PyTorch checkpoint names, with the layout change each one needs.

Every layer of this subpackage lists its variables as ``{hf_name: (variable, layout)}``; ``checkpoint.py``
reads and writes files through these lists only, so a name is written once, next to the variable it names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from convbert.tf.backend import keras


@dataclass(frozen=True)
class Layout:
    """How a PyTorch tensor becomes the Keras variable (``to_keras``) and back (``to_torch``)."""

    name: str
    to_keras: Callable[[np.ndarray], np.ndarray]
    to_torch: Callable[[np.ndarray], np.ndarray]


SAME = Layout("same", lambda a: a, lambda a: a)
# nn.Linear keeps (out, in); keras Dense keeps (in, out)
LINEAR = Layout("linear", lambda a: a.T, lambda a: a.T)
# HF's SeparableConv1D: depthwise Conv1d (C, 1, k), pointwise Conv1d (W, C, 1), bias (W, 1)
DEPTHWISE = Layout("depthwise", lambda a: a[:, 0, :], lambda a: a[:, None, :])
POINTWISE = Layout("pointwise", lambda a: a[:, :, 0].T, lambda a: a.T[:, :, None])
COLUMN = Layout("column", lambda a: a[:, 0], lambda a: a[:, None])

WeightMap = dict[str, tuple[keras.Variable, Layout]]


def dense(name: str, layer: keras.layers.Dense) -> WeightMap:
    return {f"{name}.weight": (layer.kernel, LINEAR), f"{name}.bias": (layer.bias, SAME)}


def norm(name: str, layer: keras.layers.LayerNormalization) -> WeightMap:
    return {f"{name}.weight": (layer.gamma, SAME), f"{name}.bias": (layer.beta, SAME)}


def prefixed(prefix: str, weights: WeightMap) -> WeightMap:
    return {prefix + k: v for k, v in weights.items()}
