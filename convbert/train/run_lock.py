"""One writer per run directory: an advisory lock held by the process that writes it.

Two ``convbert-train`` processes pointed at the same ``hydra.run.dir`` (a repeated command, a resume started
while the first run still trains) would interleave checkpoints and metrics. The second is refused instead.
The lock is the kernel's (``flock``): it goes away with its process, so a killed run never leaves a stale one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from convbert.errors import ConfigError

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not locked there
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".convbert.lock"


@contextlib.contextmanager
def run_dir_lock(run_dir: Path, enabled: bool = True) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the ``with`` body; a ConfigError naming the holder if another has it."""
    if not enabled or fcntl is None:
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text().strip() or "unknown"
            raise ConfigError(
                f"{run_dir} is being written by another convbert-train process (pid {holder}); wait for it "
                "to finish (then resume=true continues it), or choose another hydra.run.dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
