"""Training tasks: every module here implementing ``convbert_register_blocks`` registers one task class.

A plugin adds a task the same way from its own package (see ``plugins/convbert-sentiment-intensity``).
"""

from __future__ import annotations

from typing import Any


def make_task(config: Any, tokenizer: Any, path: str = "task") -> Any:
    """The Task for a validated task node: the registered task of ``config.name``."""
    from convbert.registry import Registry

    return Registry.default().task(config.name, f"{path}.name").task(config, tokenizer, path)
