"""SavedModel export: a ``serve`` endpoint over plain dicts of tensors, the form TF Serving expects."""

from __future__ import annotations

import os
from typing import Any

from convbert.tf.backend import keras

_NOT_SERVED = ("loss", "hidden_states", "attentions")


def export_saved_model(model: Any, filepath: str | os.PathLike, verbose: bool = False) -> None:
    """Write the SavedModel. ``tf.saved_model.load(filepath).serve({"input_ids": ids, "attention_mask": mask,
    "token_type_ids": types})`` returns ``{"logits": ...}`` (``last_hidden_state`` for the base model, start
    and end logits for question answering); int32 inputs, any batch size and length. Keep the loaded object
    in a variable while serving: TensorFlow frees its variables with it."""

    def serve(inputs: dict) -> dict:
        out = model(inputs, training=False, return_dict=True)
        return {k: v for k, v in out.items() if k not in _NOT_SERVED}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serve, input_signature=[model.serving_signature()])
    archive.write_out(str(filepath), verbose=verbose)
