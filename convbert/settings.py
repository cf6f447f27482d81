"""Every ``CONVBERT_*`` environment variable, in one place: what each changes, read when it is used.

Nothing here (nor anywhere in convbert) writes to the environment when a module is imported; the command-line
programs set the variables they pass to their own child processes in their ``main``.

- ``CONVBERT_DISABLE_PLUGIN_AUTOLOAD``: ``1`` / ``true`` / ``yes``: entry-point plugins (group ``convbert``)
  are not loaded; built-ins and modules listed under ``plugins:`` still are (``convbert.registry``). For
  tests, and when one installed plugin is broken.
- ``CONVBERT_KERNELS``: pins the GEMM library per product shape instead of measuring, e.g.
  ``linear=onednn,linear_act=plain`` or ``all=plain`` (``convbert.kernels.autotune``); a run's
  ``summary.json`` records what it took.
- ``CONVBERT_ONEDNN``: ``0``: never the oneDNN kernels (``CONVBERT_KERNELS=all=plain`` for the linear layers).
- ``CONVBERT_KERNEL_CACHE``: where measured kernel choices are kept (a JSON file); ``off`` keeps them in
  memory only. Default ``$XDG_CACHE_HOME/convbert/kernels.json`` (``~/.cache/...``).
- ``CONVBERT_RUN_STAMP``: the ``<date>_<time>`` of a run's output directory (``outputs/<stamp>``);
  ``convbert-train`` sets it in its ``main`` for its own processes, so every rank of a torchrun job writes to
  the same directory.
- ``CONVBERT_TEST_DEVICE``: tests: the device the parity tests run on (``cuda``; default ``cpu``).
- ``CONVBERT_SKIP_COMPILE``: tests: ``1`` skips the ``torch.compile`` tests.
- ``CONVBERT_FUZZ_EXAMPLES``: tests: examples per property of the command-line fuzz tests (default 25).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

DISABLE_PLUGIN_AUTOLOAD = "CONVBERT_DISABLE_PLUGIN_AUTOLOAD"
KERNELS = "CONVBERT_KERNELS"
ONEDNN = "CONVBERT_ONEDNN"
KERNEL_CACHE = "CONVBERT_KERNEL_CACHE"
RUN_STAMP = "CONVBERT_RUN_STAMP"
TEST_DEVICE = "CONVBERT_TEST_DEVICE"
SKIP_COMPILE = "CONVBERT_SKIP_COMPILE"
FUZZ_EXAMPLES = "CONVBERT_FUZZ_EXAMPLES"

VARIABLES = (DISABLE_PLUGIN_AUTOLOAD, KERNELS, ONEDNN, KERNEL_CACHE, RUN_STAMP, TEST_DEVICE, SKIP_COMPILE,
             FUZZ_EXAMPLES)
_TRUE = ("1", "true", "yes")


def plugin_autoload_disabled() -> bool:
    return os.environ.get(DISABLE_PLUGIN_AUTOLOAD, "").strip().lower() in _TRUE


def kernel_choices() -> str:
    """``CONVBERT_KERNELS`` as given (parsed and checked by ``convbert.kernels.autotune``)."""
    return os.environ.get(KERNELS, "")


def onednn_allowed() -> bool:
    return os.environ.get(ONEDNN, "1") != "0"


def cache_dir() -> Path:
    """convbert's cache directory: ``$XDG_CACHE_HOME/convbert`` (``~/.cache/convbert``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "convbert"


def kernel_cache() -> Path | None:
    """The kernel-choice cache file, or None when ``CONVBERT_KERNEL_CACHE`` switches it off."""
    value = os.environ.get(KERNEL_CACHE, "")
    if value.lower() in ("off", "0", "none", "false"):
        return None
    if value:
        return Path(value)
    return cache_dir() / "kernels.json"


def run_stamp() -> str | None:
    return os.environ.get(RUN_STAMP) or None


def test_device() -> str:
    return os.environ.get(TEST_DEVICE, "cpu")


def skip_compile() -> bool:
    return os.environ.get(SKIP_COMPILE) == "1"


def fuzz_examples() -> int:
    return int(os.environ.get(FUZZ_EXAMPLES, "25"))


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set variables for the body only (unset ones are not overridden), then restore the environment: how a
    library that reads its settings at import (Keras's ``KERAS_BACKEND``) is configured without a lasting
    write."""
    saved = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        os.environ.setdefault(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
