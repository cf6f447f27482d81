"""The one hook through which built-in and third-party plugins add blocks (pluggy, as pytest does)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from convbert.registry import Registry

PROJECT = "convbert"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def convbert_register_blocks(registry: Registry) -> None:
    """Register blocks with ``registry.register(kind, name, factory, params)``.

    Called once per plugin: built-ins first, then entry points of group ``convbert``, then modules a
    config lists under ``plugins:``. ``factory(params, ctx)`` returns an ``nn.Module``; ``params`` is a
    dataclass whose fields (with defaults) are the block's configuration schema.
    """


@hookspec
def convbert_register_tasks(registry: Registry) -> None:
    """Register training tasks with ``registry.register_task(TaskClass)`` (and their Hydra config dirs with
    ``registry.add_config_dir``).

    Called only on the training side, the first time a task is looked up, so that a plugin that adds a head
    and a task imports its task module (and with it ``convbert.train``) here, inside the hook, and building a
    model never imports the training package. (Registering a task inside ``convbert_register_blocks`` still
    works, at the price of that import.)
    """
