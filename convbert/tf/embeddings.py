"""Word + position + token-type embeddings, LayerNorm, dropout, and the projection to the hidden size."""

from __future__ import annotations

from convbert.config import ConvBertConfig
from convbert.errors import InputError
from convbert.tf import weights
from convbert.tf.backend import keras, ops, tf


class TFConvBertEmbeddings(keras.layers.Layer):
    """(B, L) ids or (B, L, E) embeddings -> (B, L, H). ConvBERT-small embeds in E=128 and projects to H=256.

    The padding row of the word table gets no gradient, as ``nn.Embedding(padding_idx=...)`` in PyTorch.
    """

    def __init__(self, config: ConvBertConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.vocab_size = config.vocab_size
        self.embedding_size = config.embedding_size
        self.max_positions = config.max_position_embeddings
        self.type_vocab_size = config.type_vocab_size
        self.pad_token_id = config.pad_token_id
        self.initializer_range = config.initializer_range
        self.norm = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="LayerNorm")
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)
        self.project = None
        if config.embedding_size != config.hidden_size:
            init = _normal(config.initializer_range)
            self.project = keras.layers.Dense(config.hidden_size, kernel_initializer=init, name="project")

    def build(self, input_shape=None) -> None:
        init = _normal(self.initializer_range)
        size = self.embedding_size
        self.word_embeddings = self.add_weight(shape=(self.vocab_size, size), initializer=init, name="word")
        self.position_embeddings = self.add_weight(
            shape=(self.max_positions, size), initializer=init, name="position"
        )
        self.token_type_embeddings = self.add_weight(
            shape=(self.type_vocab_size, size), initializer=init, name="token_type"
        )
        self.norm.build((None, None, size))
        if self.project is not None:
            self.project.build((None, None, size))

    def call(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
             training: bool = False):
        length = (input_ids if input_ids is not None else inputs_embeds).shape[1]
        if length is not None and length > self.max_positions and position_ids is None:
            raise InputError(
                f"sequence length {length} is longer than the position table ({self.max_positions} "
                "positions, max_position_embeddings). Truncate the input (tokenizer truncation=True, "
                f"max_length={self.max_positions}) or use a model with a longer position table."
            )
        if inputs_embeds is None:
            _check_range(input_ids, self.vocab_size, "input_ids", "vocab_size")
            inputs_embeds = ops.take(self.word_embeddings, input_ids, axis=0)
            if self.pad_token_id is not None:
                inputs_embeds = ops.where((input_ids == self.pad_token_id)[..., None],
                                          ops.stop_gradient(inputs_embeds), inputs_embeds)
        if position_ids is None:
            position = self.position_embeddings[None, : ops.shape(inputs_embeds)[1]]
        else:
            _check_range(position_ids, self.max_positions, "position_ids", "max_position_embeddings")
            position = ops.take(self.position_embeddings, position_ids, axis=0)
        if token_type_ids is None:
            token_type = self.token_type_embeddings[0]  # all-zero token types: one row, broadcast
        else:
            _check_range(token_type_ids, self.type_vocab_size, "token_type_ids", "type_vocab_size")
            token_type = ops.take(self.token_type_embeddings, token_type_ids, axis=0)
        x = self.dropout(self.norm(inputs_embeds + position + token_type), training=training)
        return self.project(x) if self.project is not None else x

    def hf_weights(self) -> weights.WeightMap:
        out: weights.WeightMap = {
            "embeddings.word_embeddings.weight": (self.word_embeddings, weights.SAME),
            "embeddings.position_embeddings.weight": (self.position_embeddings, weights.SAME),
            "embeddings.token_type_embeddings.weight": (self.token_type_embeddings, weights.SAME),
            **weights.norm("embeddings.LayerNorm", self.norm),
        }
        if self.project is not None:
            out.update(weights.dense("embeddings_project", self.project))
        return out


def _normal(std: float) -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(stddev=std)


def _check_range(ids, size: int, what: str, field: str) -> None:
    """Name an out-of-range id instead of TensorFlow's gather error; eager calls only (no graph cost)."""
    if not tf.executing_eagerly() or ops.size(ids) == 0:
        return
    low, high = int(ops.min(ids)), int(ops.max(ids))
    if low < 0 or high >= size:
        bad = high if high >= size else low
        raise InputError(
            f"{what} contains {bad}, outside [0, {size - 1}] ({field}={size}). Check that the tokenizer "
            "matches the model's vocabulary, or resize the embeddings."
        )
