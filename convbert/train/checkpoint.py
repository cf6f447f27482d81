"""Resumable training state on disk: safetensors for tensors, JSON for the rest, never a pickle.

    checkpoints/<stage>/step-000120/
        model.safetensors         the training module's state dict (our key names)
        optimizer.safetensors     the optimizer's per-parameter tensors, keyed "<param index>.<name>"
        state.json                step, data position, optimizer hyper-parameters, scheduler, loss window ...
        rng-rank<r>.safetensors   torch (and CUDA) RNG states and the task's generator, one file per process
        rng-rank<r>.json          Python's ``random`` state
        manifest.json             bytes and SHA-256 of every file above, written last

A checkpoint is written into a hidden temporary directory that is renamed into place when complete, so a run
killed at any moment leaves the previous checkpoint or the new one, never half of one. A file damaged later
(a disk error, a truncating copy) fails its checksum: ``resume=true`` then falls back to the newest intact
checkpoint, which is why two are kept by default.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from convbert.errors import CheckpointError
from convbert.interop.files import atomic_write_text, load_safetensors, sha256_file
from convbert.train.distributed import Distributed

PREFIX = "step-"
MANIFEST = "manifest.json"
log = logging.getLogger("convbert.train")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def checkpoints(directory: Path) -> list[Path]:
    """Complete checkpoints in ``directory``, oldest first."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_dir() and p.name.startswith(PREFIX))


def latest_checkpoint(directory: Path) -> Path | None:
    found = checkpoints(directory)
    return found[-1] if found else None


def write_manifest(path: Path) -> None:
    """Record bytes and SHA-256 of every file of the checkpoint directory ``path``."""
    files = {f.name: {"bytes": f.stat().st_size, "sha256": sha256_file(f)}
             for f in sorted(path.iterdir()) if f.is_file() and f.name != MANIFEST}
    (path / MANIFEST).write_text(json.dumps({"files": files}, indent=1))


def checkpoint_damage(path: Path) -> str | None:
    """What is wrong with the checkpoint ``path`` (a missing, truncated or altered file), or None if intact.

    A checkpoint written before manifests existed is checked for its files being readable JSON/present."""
    manifest = path / MANIFEST
    if not manifest.exists():
        needed = ["state.json", "model.safetensors", "optimizer.safetensors"]
        missing = [name for name in needed if not (path / name).is_file()]
        return f"{path / missing[0]} is missing" if missing else None
    try:
        files = json.loads(manifest.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{manifest} is unreadable ({exc})"
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            return f"{file} is missing"
        size = file.stat().st_size
        if size != expected["bytes"]:
            return f"{file} has {size} bytes, {expected['bytes']} were written (truncated or overwritten)"
        if sha256_file(file) != expected["sha256"]:
            return f"{file} does not match its SHA-256 checksum (the file was altered after it was written)"
    return None


def resumable_checkpoint(directory: Path) -> Path | None:
    """The newest intact checkpoint in ``directory``; damaged newer ones are reported and skipped.

    None when there is no checkpoint; a CheckpointError when there are some but none is intact."""
    found = checkpoints(directory)
    damaged: list[str] = []
    for path in reversed(found):
        problem = checkpoint_damage(path)
        if problem is None:
            if damaged:
                log.warning("resume: skipping damaged checkpoint(s): %s; resuming from %s",
                            "; ".join(damaged), path.name)
            return path
        damaged.append(problem)
    if damaged:
        raise CheckpointError(
            f"no intact checkpoint to resume from in {directory}: {'; '.join(damaged)}. Start over with "
            f"resume=false and another hydra.run.dir, or delete {directory} and run again with resume=true "
            "(the stage restarts from its first step)")
    return None


# -- optimizer state <-> tensors + JSON ---------------------------------------------------------------------
def optimizer_files(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                   meta: dict[str, Any]) -> None:
    fresh = optimizer.state_dict()
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    if len(meta["param_groups"]) != len(fresh["param_groups"]):
        raise CheckpointError("the checkpoint's optimizer has a different number of parameter groups")
    groups = []
    for saved, current in zip(meta["param_groups"], fresh["param_groups"], strict=True):
        groups.append({k: tuple(v) if isinstance(current.get(k), tuple) else v for k, v in saved.items()})
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# -- RNG states -------------------------------------------------------------------------------------------
def rng_files(rng: torch.Generator) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"torch": torch.get_rng_state(), "task": rng.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    version, internal, gauss = random.getstate()
    return tensors, {"python": [version, list(internal), gauss]}


def load_rng(rng: torch.Generator, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"])
    rng.set_state(tensors["task"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("cuda.")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))


# -- save / load ------------------------------------------------------------------------------------------
def save_checkpoint(directory: Path, step: int, *, module: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, rng: torch.Generator, state: dict[str, Any], dist: Distributed,
                    keep: int = 2) -> Path:
    """Write the full training state at ``step``; every process calls this (each writes its RNG state).

    A failed write (a full disk, a lost permission) removes the half-written directory and raises a
    CheckpointError: the checkpoints written before stay as they were."""
    final = directory / f"{PREFIX}{step:06d}"
    tmp = directory / f".{final.name}.tmp"
    try:
        _write_checkpoint(directory, final, tmp, module=module, optimizer=optimizer, scheduler=scheduler,
                          rng=rng, state=state, dist=dist, keep=keep)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        earlier = latest_checkpoint(directory)
        kept = f"the previous checkpoint {earlier} is intact" if earlier else "no earlier checkpoint exists"
        fix = "free some space" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "fix the problem"
        raise CheckpointError(
            f"could not write checkpoint {final.name} in {directory}: {exc.strerror or exc}; {kept}. "
            f"{fix.capitalize()}, then continue with resume=true") from exc
    return final


def _write_checkpoint(directory: Path, final: Path, tmp: Path, *, module: torch.nn.Module,
                      optimizer: torch.optim.Optimizer, scheduler: Any, rng: torch.Generator,
                      state: dict[str, Any], dist: Distributed, keep: int) -> None:
    step = int(final.name.removeprefix(PREFIX))
    if dist.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    dist.barrier()
    tensors, meta = rng_files(rng)
    save_file(tensors, str(tmp / f"rng-rank{dist.rank}.safetensors"))
    (tmp / f"rng-rank{dist.rank}.json").write_text(json.dumps(meta))
    dist.barrier()
    if dist.is_main:
        save_file({k: v.detach().contiguous().clone() for k, v in module.state_dict().items()},
                  str(tmp / "model.safetensors"), metadata={"format": "pt"})
        opt_tensors, opt_meta = optimizer_files(optimizer)
        save_file({k: v.contiguous() for k, v in opt_tensors.items()}, str(tmp / "optimizer.safetensors"))
        record = {**state, "step": step, "world_size": dist.world_size, "optimizer": opt_meta,
                  "scheduler": scheduler.state_dict()}
        (tmp / "state.json").write_text(json.dumps(record, indent=1))
        write_manifest(tmp)
        for file in tmp.iterdir():
            with open(file, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(directory)
        for old in checkpoints(directory)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    dist.barrier()


def load_checkpoint(path: Path, *, module: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    rng: torch.Generator, dist: Distributed) -> dict[str, Any]:
    """Restore everything ``save_checkpoint`` wrote; returns the JSON state (step, data position, ...)."""
    try:
        state = json.loads((path / "state.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({exc}); delete it to resume from the one before"
        ) from exc
    if state["world_size"] != dist.world_size:
        raise CheckpointError(
            f"checkpoint {path} was written by {state['world_size']} process(es) but this run has "
            f"{dist.world_size}; resume with the same torchrun --nproc_per_node={state['world_size']}"
        )
    missing = module.load_state_dict(load_safetensors(path / "model.safetensors"), strict=False)
    if missing.missing_keys or missing.unexpected_keys:
        raise CheckpointError(
            f"checkpoint {path} does not match the model: missing {missing.missing_keys[:5]}, unexpected "
            f"{missing.unexpected_keys[:5]}. Was the config changed since the run was started?"
        )
    load_optimizer(optimizer, load_file(str(path / "optimizer.safetensors")), state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng_meta = json.loads((path / f"rng-rank{dist.rank}.json").read_text())
    load_rng(rng, load_file(str(path / f"rng-rank{dist.rank}.safetensors")), rng_meta)
    return state


def mark_done(directory: Path, result: dict[str, Any]) -> None:
    """Record that a stage finished (its result is reused when a later stage is resumed)."""
    atomic_write_text(directory / "done.json", json.dumps(result, indent=1))


def stage_result(directory: Path) -> dict[str, Any] | None:
    file = directory / "done.json"
    return json.loads(file.read_text()) if file.exists() else None

