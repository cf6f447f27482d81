"""Read and write the PyTorch classes' checkpoint directories (Hugging Face names, safetensors) from Keras.

Weights are read with ``safetensors.numpy`` only: no pickle is ever opened. A directory saved by convbert's
PyTorch classes, by ``transformers`` or by these TF classes loads in all three.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from convbert.errors import CheckpointError
from convbert.interop import hf_keys
from convbert.interop.files import (
    OWN_INDEX,
    OWN_WEIGHTS,
    PICKLE_WEIGHTS,
    SAFE_INDEX,
    SAFE_WEIGHTS,
    atomic_write,
)
from convbert.interop.key_matching import KeyMismatch
from convbert.tf.weights import WeightMap

logger = logging.getLogger(__name__)
# constant buffers that older transformers checkpoints also saved
_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")
# our own module names (a checkpoint saved with hf_format=False)
_OUR_NAMES = ("embeddings.word.", "layers.", "head.")


def read_state(directory: Path) -> dict[str, np.ndarray]:
    """The arrays of model.safetensors or of a sharded index; pickled weights are refused with the fix."""
    weights = next((n for n in (SAFE_WEIGHTS, OWN_WEIGHTS) if (directory / n).exists()), None)
    index_name = next((n for n in (SAFE_INDEX, OWN_INDEX) if (directory / n).exists()), None)
    if weights is not None:
        files = [directory / weights]
    elif index_name is not None:
        index = json.loads((directory / index_name).read_text(encoding="utf-8"))
        files = [directory / shard for shard in sorted(set(index["weight_map"].values()))]
    elif (directory / PICKLE_WEIGHTS).exists():
        raise CheckpointError(
            f"{directory} holds only {PICKLE_WEIGHTS}, a pickle, which convbert.tf never opens. Convert it "
            "once with the PyTorch class: ConvBertModel.from_pretrained(d).save_pretrained(d) writes "
            "model.safetensors"
        )
    else:
        raise CheckpointError(f"no weights in {directory}: expected {SAFE_WEIGHTS}, {SAFE_INDEX} or their "
                              f"{OWN_WEIGHTS} forms")
    state: dict[str, np.ndarray] = {}
    for file in files:
        try:
            state.update(load_file(str(file)))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"weights file {file} is truncated or corrupt ({exc}); re-save it") from exc
    return state


def to_hf_names(state: dict[str, np.ndarray], head: str | None) -> dict[str, np.ndarray]:
    """A checkpoint in convbert's own module names (``hf_format=False``) -> Hugging Face's names."""
    bare = [k[len(hf_keys.PREFIX):] if k.startswith(hf_keys.PREFIX) else k for k in state]
    if not any(k.startswith(_OUR_NAMES) for k in bare):
        return state
    import torch

    tensors = {k: torch.from_numpy(np.array(v)) for k, v in state.items()}
    mapped, unmapped = hf_keys.to_hf(tensors, head)
    if unmapped:  # perhaps names older versions wrote: renamed where today's name maps
        renamed = hf_keys.renamed_own_keys({k: tensors[k] for k in unmapped}, _Mappable(head))
        more, unmapped = hf_keys.to_hf(renamed, head)
        mapped.update(more)
    if unmapped:
        raise CheckpointError(f"no Hugging Face name for: {', '.join(unmapped)}")
    return {k: v.numpy() for k, v in mapped.items()}


class _Mappable:
    """The own-name keys that have a Hugging Face name (``in``), for renaming older checkpoints' keys."""

    def __init__(self, head: str | None) -> None:
        self.head = head

    def __contains__(self, key: str) -> bool:
        import torch

        return not hf_keys.to_hf({key: torch.zeros(1)}, self.head)[1]


def load_into(variables: WeightMap, state: dict[str, np.ndarray], head: str | None, source: object) -> None:
    """Assign ``state`` (Hugging Face names, a base or any task model's) to the model's variables.

    Missing or unexpected encoder weights and wrong shapes are errors that list them; a missing head is
    newly initialised with a warning (a task model loaded from a base checkpoint); another task's head is
    ignored.
    """
    state = {k: v for k, v in to_hf_names(state, head).items() if not k.endswith(_BUFFERS)}
    prefix = hf_keys.PREFIX
    wants_prefix = head is not None
    adapted: dict[str, np.ndarray] = {}
    for key, value in state.items():
        is_head = key.startswith(hf_keys.HF_HEAD_PREFIXES)
        if wants_prefix and not is_head and not key.startswith(prefix):
            key = prefix + key
        elif not wants_prefix and key.startswith(prefix):
            key = key[len(prefix):]
        adapted[key] = value
    tied_decoder = "generator_lm_head.weight"
    mismatch = KeyMismatch.sort(missing=[k for k in variables if k not in adapted],
                                unexpected=[k for k in adapted if k not in variables and k != tied_decoder],
                                head_prefixes=hf_keys.HF_HEAD_PREFIXES)
    mismatch.require_match(source, "the model")
    converted = {k: layout.to_keras(adapted[k]) for k, (_, layout) in variables.items() if k in adapted}
    wrong = [f"{k}: checkpoint {tuple(adapted[k].shape)} vs model {tuple(variables[k][0].shape)}"
             for k, v in converted.items() if tuple(v.shape) != tuple(variables[k][0].shape)]
    if wrong:
        raise CheckpointError(f"checkpoint {source} has tensors of the wrong shape: {'; '.join(wrong)}")
    mismatch.log_heads(logger, "TF model")
    for key, value in converted.items():
        variables[key][0].assign(value.astype(np.float32, copy=False))


def save(variables: WeightMap, path: Path) -> None:
    """Write every variable under its Hugging Face name and PyTorch layout, atomically."""
    tensors = {k: np.ascontiguousarray(layout.to_torch(np.asarray(var.numpy()))) for k, (var, layout)
               in variables.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
