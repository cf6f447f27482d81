"""How a checkpoint's tensor names meet a model's, for both frameworks: what is missing, unexpected, a head.

A task model loaded from a base checkpoint lacks its head (newly initialised, with a warning); a checkpoint
of another task carries a head the model ignores; anything else that does not match is an error that lists
the names, so a wrong config.json is never loaded silently.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from convbert.errors import CheckpointError


@dataclass(frozen=True)
class KeyMismatch:
    missing: list[str]  # the model's, absent from the checkpoint
    unexpected: list[str]  # the checkpoint's, unknown to the model
    missing_head: list[str]  # the model's head weights absent from the checkpoint: newly initialised
    foreign_heads: list[str]  # another task head's weights in the checkpoint: ignored

    @classmethod
    def sort(cls, missing: Iterable[str], unexpected: Iterable[str],
             head_prefixes: tuple[str, ...]) -> KeyMismatch:
        missing, unexpected = list(missing), list(unexpected)
        return cls(missing=[k for k in missing if not k.startswith(head_prefixes)],
                   unexpected=[k for k in unexpected if not k.startswith(head_prefixes)],
                   missing_head=[k for k in missing if k.startswith(head_prefixes)],
                   foreign_heads=[k for k in unexpected if k.startswith(head_prefixes)])

    def require_match(self, source: object, model: str) -> None:
        """Raise naming every missing and unexpected tensor (head-only differences are not errors)."""
        if self.missing or self.unexpected:
            missing, unexpected = ", ".join(self.missing) or "-", ", ".join(self.unexpected) or "-"
            raise CheckpointError(
                f"checkpoint {source} does not match {model}: missing keys [{missing}]; unexpected keys "
                f"[{unexpected}]. Check that config.json describes the same architecture as the weights."
            )

    def log_heads(self, logger: logging.Logger, model: str) -> None:
        if self.missing_head:
            logger.warning("%s: newly initialised head weights (train them): %s", model,
                           ", ".join(self.missing_head))
        if self.foreign_heads:
            logger.info("%s: ignored weights of another task head: %s", model, ", ".join(self.foreign_heads))
