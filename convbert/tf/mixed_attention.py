"""ConvBERT's mixed attention: self-attention heads and span-based dynamic convolution heads, concatenated.

The head split is Hugging Face's (``convbert.blocks.mixed.split_heads`` with rule "hf"): ``num_heads //
head_ratio`` heads of each kind, of size ``hidden // heads // 2``. The convolution accumulates k shifted
views of the values instead of unfolding a (B, L, C, k) copy, as the PyTorch block does.
"""

from __future__ import annotations

import math

from convbert.blocks.mixed import split_heads
from convbert.config import ConvBertConfig
from convbert.tf import weights
from convbert.tf.backend import keras, ops


def shifted_taps(x, taps):
    """out[:, l] = sum_j taps[..., j] * x[:, l + j - k // 2], zero outside the sequence.

    ``x``: (B, L, ...); ``taps``: broadcastable to x with a trailing axis of size k (odd).
    """
    k = taps.shape[-1]
    pad = k // 2
    length = ops.shape(x)[1]
    padded = ops.pad(x, [(0, 0), (pad, pad)] + [(0, 0)] * (len(x.shape) - 2))
    out = padded[:, 0:length] * taps[..., 0]
    for j in range(1, k):
        out = out + padded[:, j : j + length] * taps[..., j]
    return out


class TFMixedAttention(keras.layers.Layer):
    """(B, L, H) -> (B, L, 2 * heads * head_size), and the attention probabilities when asked for."""

    def __init__(self, config: ConvBertConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hidden_size = config.hidden_size
        self.num_heads, self.head_size = split_heads(
            config.hidden_size, config.num_attention_heads, config.head_ratio, "hf"
        )
        self.width = width = self.num_heads * self.head_size
        self.kernel_size = config.conv_kernel_size
        self.mask_padding = bool(config.conv_mask_padding)
        self.initializer_range = config.initializer_range
        init = keras.initializers.RandomNormal(stddev=config.initializer_range)

        def dense(units: int, name: str) -> keras.layers.Dense:
            return keras.layers.Dense(units, kernel_initializer=init, name=name)

        self.query, self.key, self.value = dense(width, "query"), dense(width, "key"), dense(width, "value")
        self.attention_dropout = keras.layers.Dropout(config.attention_probs_dropout_prob)
        # span-aware key: depthwise then pointwise convolution of the input
        self.key_pointwise = dense(width, "key_pointwise")
        self.conv_kernel = dense(self.num_heads * self.kernel_size, "conv_kernel")
        self.conv_value = dense(width, "conv_value")

    def build(self, input_shape=None) -> None:
        hidden = (None, None, self.hidden_size)
        self.key_depthwise = self.add_weight(
            shape=(self.hidden_size, self.kernel_size), name="key_depthwise",
            initializer=keras.initializers.RandomNormal(stddev=self.initializer_range),
        )
        for layer in (self.query, self.key, self.value, self.key_pointwise, self.conv_value):
            layer.build(hidden)
        self.conv_kernel.build((None, None, self.width))

    def call(self, hidden, keep=None, additive=None, output_attentions: bool = False, training=False):
        """``keep``: (B, L) 1.0 at real tokens, 0.0 at padding; ``additive``: (B, 1, 1, L) score mask."""
        batch, length = ops.shape(hidden)[0], ops.shape(hidden)[1]

        def heads(x):  # (B, L, W) -> (B, heads, L, head_size)
            x = ops.reshape(x, (batch, length, self.num_heads, self.head_size))
            return ops.transpose(x, (0, 2, 1, 3))

        query = self.query(hidden)
        q = heads(query) * (1.0 / math.sqrt(self.head_size))
        scores = ops.matmul(q, ops.transpose(heads(self.key(hidden)), (0, 1, 3, 2)))  # (B, heads, L, L)
        if additive is not None:
            scores = scores + additive
        probs = ops.softmax(scores, axis=-1)
        context = ops.matmul(self.attention_dropout(probs, training=training), heads(self.value(hidden)))
        context = ops.reshape(ops.transpose(context, (0, 2, 1, 3)), (batch, length, self.width))

        masked = self.mask_padding and keep is not None
        source = hidden * keep[..., None] if masked else hidden
        span_key = self.key_pointwise(shifted_taps(source, self.key_depthwise)) * query  # (B, L, W)
        kernel = self.conv_kernel(span_key)  # (B, L, heads * k), softmax over each head's k taps
        kernel = ops.reshape(kernel, (batch, length, self.num_heads, 1, self.kernel_size))
        kernel = ops.softmax(kernel, axis=-1)
        value = self.conv_value(hidden)
        if masked:
            value = value * keep[..., None]
        value = ops.reshape(value, (batch, length, self.num_heads, self.head_size))
        conv = ops.reshape(shifted_taps(value, kernel), (batch, length, self.width))
        return ops.concatenate([context, conv], axis=-1), (probs if output_attentions else None)

    def hf_weights(self) -> weights.WeightMap:
        out: weights.WeightMap = {}
        for name, layer in (("query", self.query), ("key", self.key), ("value", self.value),
                            ("conv_kernel_layer", self.conv_kernel), ("conv_out_layer", self.conv_value)):
            out.update(weights.dense(name, layer))
        out["key_conv_attn_layer.depthwise.weight"] = (self.key_depthwise, weights.DEPTHWISE)
        out["key_conv_attn_layer.pointwise.weight"] = (self.key_pointwise.kernel, weights.POINTWISE)
        out["key_conv_attn_layer.bias"] = (self.key_pointwise.bias, weights.COLUMN)
        return out
