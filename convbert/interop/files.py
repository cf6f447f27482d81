"""Safe checkpoint files: atomic writes, safetensors first, pickles only through ``weights_only=True``."""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from convbert.atomic_files import atomic_write, atomic_write_text, sha256_file  # noqa: F401 (also their old home)
from convbert.errors import CheckpointError

SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
PICKLE_WEIGHTS = "pytorch_model.bin"
# The weights of a model transformers cannot express go under names transformers does not read, so that
# transformers (4.x and 5.x, any class) refuses the directory instead of running on fresh weights.
OWN_PREFIX = "convbert_"
OWN_WEIGHTS, OWN_INDEX = OWN_PREFIX + SAFE_WEIGHTS, OWN_PREFIX + SAFE_INDEX


def save_safetensors(state: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Contiguous, unshared copies (safetensors refuses aliases), written atomically."""
    tensors = {k: v.detach().contiguous().clone() for k, v in state.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))


_SIZE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_size(size: int | str) -> int:
    """Bytes of ``5`` / ``"20KB"`` / ``"5GiB"``, as transformers reads ``max_shard_size`` (KB = 1000)."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?B)\s*", str(size).upper())
    if match is None:
        raise ValueError(f"max_shard_size={size!r}: give bytes (an int) or a size such as '500MB' or '2GiB'")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


def save_weights(state: dict[str, torch.Tensor], directory: str | os.PathLike,
                 max_shard_size: int | str | None = None, portable: bool = True) -> None:
    """``model.safetensors``, or shards of at most ``max_shard_size`` bytes with transformers' index file
    (``model-00001-of-00003.safetensors`` ..., ``model.safetensors.index.json``); weights files of an earlier
    save that this one does not rewrite are removed, so a directory never mixes two saves. ``portable=False``
    (a composition transformers cannot express) writes the same files prefixed ``convbert_``."""
    directory = Path(directory)
    prefix = "" if portable else OWN_PREFIX
    limit = parse_size(max_shard_size) if max_shard_size is not None else None
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, value in state.items():
        nbytes = value.numel() * value.element_size()
        if limit is not None and shards[-1] and size + nbytes > limit:
            shards.append({})
            size = 0
        shards[-1][key] = value
        size += nbytes
    names = [prefix + SAFE_WEIGHTS] if len(shards) == 1 else \
        [f"{prefix}model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    directory.mkdir(parents=True, exist_ok=True)
    keep = {*names, *([prefix + SAFE_INDEX] if len(shards) > 1 else [])}
    earlier = [directory / n for n in (SAFE_WEIGHTS, SAFE_INDEX, OWN_WEIGHTS, OWN_INDEX)]
    earlier += [*directory.glob("model-*-of-*.safetensors"),
                *directory.glob(OWN_PREFIX + "model-*-of-*.safetensors")]
    for old in earlier:
        if old.name not in keep:
            old.unlink(missing_ok=True)
    for name, shard in zip(names, shards, strict=True):
        save_safetensors(shard, directory / name)
    if len(shards) > 1:
        total = sum(v.numel() * v.element_size() for v in state.values())
        index = {"metadata": {"total_size": total},
                 "weight_map": {k: name for name, shard in zip(names, shards, strict=True) for k in shard}}
        text = json.dumps(index, indent=2, sort_keys=True) + "\n"
        atomic_write_text(directory / (prefix + SAFE_INDEX), text)


def load_state_dict_dir(directory: str | os.PathLike) -> tuple[dict[str, torch.Tensor], Path]:
    """Read a checkpoint directory's weights: model.safetensors, a sharded index, their ``convbert_`` forms,
    or pytorch_model.bin.

    Pickled weights are read with ``torch.load(weights_only=True)``: a file that would run code is refused.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(
            f"checkpoint directory {str(directory)!r} does not exist; pass a directory written by "
            "save_pretrained (convbert's or transformers')"
        )
    for weights, index_name in ((SAFE_WEIGHTS, SAFE_INDEX), (OWN_WEIGHTS, OWN_INDEX)):
        if (directory / weights).exists():
            return load_safetensors(directory / weights), directory / weights
        if (directory / index_name).exists():
            index = json.loads((directory / index_name).read_text())
            state: dict[str, torch.Tensor] = {}
            for shard in sorted(set(index["weight_map"].values())):
                state.update(load_safetensors(directory / shard))
            return state, directory / index_name
    if (directory / PICKLE_WEIGHTS).exists():
        return load_pickle_weights(directory / PICKLE_WEIGHTS), directory / PICKLE_WEIGHTS
    raise CheckpointError(
        f"no weights in {directory}: expected {SAFE_WEIGHTS}, {SAFE_INDEX}, {OWN_WEIGHTS} (a composition "
        f"transformers cannot express) or {PICKLE_WEIGHTS}"
    )


def load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"weights file {path} is truncated or corrupt ({exc}); re-save or re-download it"
        ) from exc


def load_pickle_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"refused to load {path}: it holds Python objects other than tensors, "
            "and unpickling them could run code. Nothing was executed. "
            "Convert the checkpoint to safetensors in a trusted environment."
        ) from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"weights file {path} is truncated or corrupt ({exc})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} is not a state dict of tensors")
    return state
