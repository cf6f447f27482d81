"""Which of two equivalent CPU kernels is faster here: measured once per machine and shape class.

The fastest GEMM library for a given product is a fact about the processor and the shape, not about the code:
on a Zen 4 with AVX-512 oneDNN's fp32 kernels beat MKL's sgemm on most ConvBERT products, with only AVX2 on
fewer, and by how much drifts with the host (bench/results.md). So a fast path is never assumed: the first
time a shape class is seen, the plain PyTorch kernel and the alternative run side by side on the real operands
(no autograd), and the alternative is kept only when it is at least ``MARGIN`` faster. Ties go to plain
PyTorch.

Choices change results only at fp32 rounding, but a run should repeat bitwise on the same machine, so
measured choices are kept in a small JSON file per machine signature (CPU model and flags, PyTorch version,
the ISA variables; ``~/.cache/convbert/kernels.json``, ``CONVBERT_KERNEL_CACHE=path`` or ``off``): the second
run on a machine reuses the first run's choices. ``CONVBERT_KERNELS`` pins choices instead (``linear=plain``,
``linear=onednn``, several separated by commas, ``all=plain``); ``CONVBERT_ONEDNN=0`` is the older spelling
of ``linear=plain``. ``chosen()`` lists what this process uses (benchmarks and the trainer record it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from pathlib import Path

import torch

from convbert import settings
from convbert.atomic_files import atomic_write_text
from convbert.errors import ConfigError

PLAIN = "plain"
MARGIN = 0.05  # an alternative must be this much faster than plain PyTorch to be chosen
ROUNDS = 3

_CHOSEN: dict[tuple[Hashable, ...], str] = {}
_PINNED: dict[str, str] | None = None
_STORED: dict[str, str] | None = None  # this machine's entry of the cache file, loaded at first use
_OPTIONS: dict[str, tuple[str, ...]] = {"linear": (PLAIN, "onednn"), "linear_act": (PLAIN, "onednn")}


def pinned(op: str) -> str | None:
    """The choice ``CONVBERT_KERNELS`` (or ``CONVBERT_ONEDNN=0``) fixes for ``op``, if any."""
    global _PINNED
    if _PINNED is None:
        _PINNED = _parse(settings.kernel_choices())
        if not settings.onednn_allowed():
            _PINNED.setdefault("linear", PLAIN)
            _PINNED.setdefault("linear_act", PLAIN)
    return _PINNED.get(op, _PINNED.get("all"))


def _parse(text: str) -> dict[str, str]:
    out = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        op, _, choice = item.partition("=")
        valid = _OPTIONS.get(op, (PLAIN,) if op == "all" else ())
        if not valid or choice not in valid:
            ops = ", ".join(f"{name}={'|'.join(opts)}" for name, opts in _OPTIONS.items())
            raise ConfigError(f"CONVBERT_KERNELS: {item!r} is not a kernel choice; valid: {ops}, all=plain "
                              "(comma-separated), or unset it to measure")
        out[op] = choice
    return out


def pick(op: str, shape_class: tuple[Hashable, ...], candidates: Callable[[], Mapping[str, Callable]]) -> str:
    """The name of the candidate to use for ``op`` on this shape class; the first call measures them.

    ``candidates()`` (called only to measure) maps names to closures over the real operands; ``plain`` is
    the reference.
    """
    forced = pinned(op)
    if forced is not None:
        return forced
    key = (op, torch.get_num_threads(), *shape_class)
    choice = _CHOSEN.get(key)
    if choice is None:
        stored = _stored()
        text = " ".join(map(str, key))
        choice = stored.get(text)
        if choice not in _OPTIONS[op]:
            choice = stored[text] = fastest(candidates())
            _store()
        _CHOSEN[key] = choice
    return choice


def cache_path() -> Path | None:
    """Where measured choices are kept (None: ``CONVBERT_KERNEL_CACHE=off``)."""
    return settings.kernel_cache()


def machine_signature() -> str:
    """What the choices depend on: CPU model and flags, PyTorch and its ISA, the variables that cap it."""
    cpu = platform.processor()
    try:
        info = Path("/proc/cpuinfo").read_text()
        lines = {line for line in info.splitlines() if line.startswith(("model name", "flags"))}
        cpu = "\n".join(sorted(lines))
    except OSError:
        pass
    caps = [os.environ.get(name, "") for name in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA",
                                                  "MKL_ENABLE_INSTRUCTIONS", "MKL_DEBUG_CPU_TYPE")]
    text = "|".join([cpu, torch.__version__, torch.backends.cpu.get_cpu_capability(), *caps])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # absent or damaged: measure again


def _stored() -> dict[str, str]:
    global _STORED
    if _STORED is None:
        path = cache_path()
        entry = _read_cache(path).get(machine_signature(), {}) if path else {}
        choices = entry.get("choices") if isinstance(entry, dict) else None
        choices = choices if isinstance(choices, dict) else {}
        _STORED = {k: v for k, v in choices.items() if isinstance(v, str)}
    return _STORED


def _store() -> None:
    """Merge this process's choices into the cache file; a cache that cannot be written is skipped."""
    path = cache_path()
    if path is None:
        return
    data = _read_cache(path)
    entry = data.get(machine_signature())
    choices = entry.get("choices", {}) if isinstance(entry, dict) else {}
    data[machine_signature()] = {"machine": f"{platform.processor() or platform.machine()}, torch "
                                            f"{torch.__version__} {torch.backends.cpu.get_cpu_capability()}",
                                 "choices": {**choices, **(_STORED or {})}}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")
    except OSError:
        pass


def fastest(candidates: Mapping[str, Callable[[], object]], rounds: int = ROUNDS) -> str:
    """Best-of-``rounds`` interleaved timings after a warm-up; plain unless another is MARGIN faster."""
    best = {name: float("inf") for name in candidates}
    with torch.no_grad():
        for run in candidates.values():
            run()
        for r in range(rounds):
            for name in list(candidates) if r % 2 == 0 else reversed(list(candidates)):
                start = time.perf_counter()
                candidates[name]()
                best[name] = min(best[name], time.perf_counter() - start)
    winner = min(best, key=best.__getitem__)
    if winner != PLAIN and best[winner] > (1 - MARGIN) * best[PLAIN]:
        return PLAIN
    return winner


@contextlib.contextmanager
def pinning(spec: str) -> Iterator[None]:
    """Within the block, choices as ``CONVBERT_KERNELS=spec`` would pin them (benchmarks compare paths)."""
    global _PINNED
    saved = dict(_PINNED) if _PINNED is not None else None
    pinned("linear")  # read the environment first, so the block adds to it
    _PINNED = {**(_PINNED or {}), **_parse(spec)}
    try:
        yield
    finally:
        _PINNED = saved


def chosen() -> dict[str, str]:
    """What this process chose, as ``{"op threads=T shape...": choice}`` (for reports and summaries)."""
    return {" ".join(map(str, key)): value for key, value in sorted(_CHOSEN.items(), key=str)}


def summary() -> dict[str, dict[str, int]]:
    """How many shape classes of each op took each choice, e.g. ``{"linear": {"onednn": 7, "plain": 2}}``."""
    counts: dict[str, dict[str, int]] = {}
    for (op, *_), value in _CHOSEN.items():
        counts.setdefault(op, {}).setdefault(value, 0)
        counts[op][value] += 1
    return counts


def reset() -> None:
    """Forget measured, loaded and pinned choices (tests; after changing ``CONVBERT_KERNELS``)."""
    global _PINNED, _STORED
    _CHOSEN.clear()
    _PINNED = _STORED = None


def rows_class(rows: int) -> int:
    """Row counts in the same power-of-two bucket share a measurement (batches vary in length)."""
    return 1 << max(0, rows - 1).bit_length()
