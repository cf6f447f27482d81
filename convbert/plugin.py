"""The public plugin surface: everything a plugin may import from convbert, and nothing else.

A plugin (a block, a head, a training task) imports only from here, as pytest plugins import from ``pytest``
and not from ``_pytest``: the modules behind these names may move, these names stay. ::

    from convbert.plugin import ConfigError, Task, hookimpl, require

Names of the model side load at once. Names of the training side (``Task`` and its helpers, the data readers,
the metrics) load on first use, so a plugin module that registers only blocks and heads never imports the
training package, and one that registers a task does so from its ``convbert_register_tasks`` hook.

- hooks: ``hookimpl`` (the marker of ``convbert_register_blocks`` / ``convbert_register_tasks``),
  ``Registry`` and ``BlockSpec`` (what the hooks receive and return)
- building blocks: ``BuildContext`` (a factory's second argument), ``SequenceMask``, ``head_layout``,
  ``Activation``, ``ConvBertWithHead`` (to give a head its own model class with ``head_name``)
- outputs: ``ModelOutput`` and the ``*Output`` classes heads return
- errors: ``ConvBertError``, ``ConfigError``, ``DataError``, ``InputError``, ``PluginError``; ``require``
- the contract suite: ``check_block``
- training side: ``Task``, ``OneLabelPerExample``, ``LabelNames``, ``check_labels``, ``Features``, ``metrics``
  (accuracy, entropy, ...), the readers ``read_jsonl`` / ``iter_jsonl`` and ``stable_split`` / ``SPLITS``
"""

from __future__ import annotations

import importlib
from typing import Any

from convbert.activations import Activation
from convbert.blocks.head_layout import head_layout
from convbert.checking import require
from convbert.composition import BuildContext
from convbert.errors import (
    CheckpointError,
    ConfigError,
    ConvBertError,
    DataError,
    InputError,
    PluginError,
)
from convbert.hookspecs import hookimpl
from convbert.kernels.sequence_mask import SequenceMask
from convbert.modeling import ConvBertWithHead
from convbert.outputs import (
    BaseModelOutput,
    MaskedLMOutput,
    ModelOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from convbert.registry import BlockSpec, Registry

# name -> (module, attribute); loaded on first use (the training side, the contract suite)
_LAZY = {
    "Task": ("convbert.train.tasks.base", "Task"),
    "OneLabelPerExample": ("convbert.train.tasks.base", "OneLabelPerExample"),
    "LabelNames": ("convbert.train.tasks.base", "LabelNames"),
    "check_labels": ("convbert.train.tasks.base", "check_labels"),
    "Features": ("convbert.train.tasks.base", "Features"),
    "metrics": ("convbert.train.metrics", None),
    "read_jsonl": ("convbert.data.readers", "read_jsonl"),
    "iter_jsonl": ("convbert.data.readers", "iter_jsonl"),
    "stable_split": ("convbert.data.splits", "stable_split"),
    "SPLITS": ("convbert.data.splits", "SPLITS"),
    "check_block": ("convbert.testing", "check_block"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'convbert.plugin' has no attribute {name!r}; the plugin surface is "
                             f"{', '.join(sorted(__all__))}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Activation", "BaseModelOutput", "BlockSpec", "BuildContext", "CheckpointError", "ConfigError",
    "ConvBertError", "ConvBertWithHead", "DataError", "InputError", "MaskedLMOutput", "ModelOutput",
    "MultipleChoiceModelOutput", "PluginError", "QuestionAnsweringModelOutput", "Registry",
    "SequenceClassifierOutput", "SequenceMask", "TokenClassifierOutput", "head_layout", "hookimpl", "require",
    *_LAZY,
]
