"""The position-wise FFN: dense, or ConvBERT's grouped linear (G block-diagonal matrices, one einsum)."""

from __future__ import annotations

from convbert.config import ConvBertConfig
from convbert.tf import weights
from convbert.tf.activations import get_activation
from convbert.tf.backend import keras, ops


class TFGroupedDense(keras.layers.Layer):
    """Features split into G groups, each with its own (in/G x out/G) matrix: G times fewer weights.

    Weight layout (G, in/G, out/G) as Hugging Face's ``GroupedLinearLayer``, so checkpoints map one to one.
    """

    def __init__(self, in_features: int, out_features: int, groups: int, initializer_range: float, **kwargs):
        super().__init__(**kwargs)
        self.in_features, self.out_features, self.groups = in_features, out_features, groups
        self.initializer_range = initializer_range

    def build(self, input_shape=None) -> None:
        g = self.groups
        self.kernel = self.add_weight(
            shape=(g, self.in_features // g, self.out_features // g), name="kernel",
            initializer=keras.initializers.RandomNormal(stddev=self.initializer_range),
        )
        self.bias = self.add_weight(shape=(self.out_features,), initializer="zeros", name="bias")

    def call(self, x):
        lead = ops.shape(x)[:-1]
        x = ops.reshape(x, (-1, self.groups, self.in_features // self.groups))
        y = ops.einsum("ngi,gio->ngo", x, self.kernel)
        return ops.reshape(y, (*lead, self.out_features)) + self.bias


class TFFeedForward(keras.layers.Layer):
    """(B, L, H) -> (B, L, H): up-projection, activation, down-projection."""

    def __init__(self, config: ConvBertConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        hidden, inner, groups = config.hidden_size, config.intermediate_size, config.num_groups
        self.hidden_size, self.intermediate_size = hidden, inner
        self.act = get_activation(config.hidden_act)
        std = config.initializer_range
        if groups == 1:
            init = keras.initializers.RandomNormal(stddev=std)
            self.up = keras.layers.Dense(inner, kernel_initializer=init, name="up")
            self.down = keras.layers.Dense(hidden, kernel_initializer=init, name="down")
        else:
            self.up = TFGroupedDense(hidden, inner, groups, std, name="up")
            self.down = TFGroupedDense(inner, hidden, groups, std, name="down")

    def build(self, input_shape=None) -> None:
        self.up.build((None, None, self.hidden_size))
        self.down.build((None, None, self.intermediate_size))

    def call(self, x):
        return self.down(self.act(self.up(x)))

    def hf_weights(self) -> weights.WeightMap:
        out: weights.WeightMap = {}
        for name, layer in (("intermediate.dense", self.up), ("output.dense", self.down)):
            if isinstance(layer, TFGroupedDense):
                out[f"{name}.weight"] = (layer.kernel, weights.SAME)  # (G, in/G, out/G) on both sides
                out[f"{name}.bias"] = (layer.bias, weights.SAME)
            else:
                out.update(weights.dense(name, layer))
        return out
