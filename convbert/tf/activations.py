"""Activation functions by the names Hugging Face configs use (``hidden_act``), in ``keras.ops``.

The same names and formulas as ``convbert.activations`` so that a config means the same model on both
frameworks ("gelu" is the exact erf GELU, the tanh approximations have their own names).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from convbert.errors import ConfigError
from convbert.tf.backend import ops


def _gelu_new(x):
    return 0.5 * x * (1.0 + ops.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def _gelu_fast(x):
    return 0.5 * x * (1.0 + ops.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


ACTIVATIONS: dict[str, Callable] = {
    "gelu": lambda x: ops.gelu(x, approximate=False),
    "gelu_new": _gelu_new,
    "gelu_pytorch_tanh": _gelu_new,
    "gelu_fast": _gelu_fast,
    "quick_gelu": lambda x: x * ops.sigmoid(1.702 * x),
    "relu": ops.relu,
    "silu": ops.silu,
    "swish": ops.silu,
    "mish": lambda x: x * ops.tanh(ops.softplus(x)),
    "tanh": ops.tanh,
    "sigmoid": ops.sigmoid,
    "linear": lambda x: x,
}


def get_activation(name: str) -> Callable:
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}; choose one of {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name]
