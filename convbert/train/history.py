"""metrics.jsonl: one JSON object per logged training window or dev evaluation, appended as training goes.

Records carry ``stage``, ``step`` and ``split`` ("train" or "dev"); a resumed run first drops the records
written after its checkpoint, so the file reads as if the run had never stopped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from convbert.interop.files import atomic_write_text

FILE = "metrics.jsonl"


def read_history(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class History:
    """Appends records to ``path`` (only where ``enabled``: process 0 under torchrun)."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path, self.enabled = path, enabled

    def append(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def keep(self, stages_done: list[str], stage: str | None = None, step: int = 0) -> None:
        """Keep the records of finished stages and those of ``stage`` up to ``step``; drop the rest."""
        if not self.enabled:
            return
        kept = [r for r in read_history(self.path)
                if r.get("stage") in stages_done or (r.get("stage") == stage and r.get("step", 0) <= step)]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def records(self) -> list[dict[str, Any]]:
        return read_history(self.path)
