"""Error types: each one names the problem and the fix, so users never read a torch stack to learn why."""

from __future__ import annotations


class ConvBertError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(ConvBertError, ValueError):
    """A configuration or composition value is wrong; the message names the key path and the fix."""


class DataError(ConfigError):
    """A data file or record is malformed (not UTF-8, not JSON, wrong types, empty); names file:line."""


class UnknownBlockError(ConfigError, KeyError):
    """A block name that no installed plugin registered."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DuplicateBlockError(ConvBertError):
    """Two providers registered the same (kind, name)."""


class PluginError(ConvBertError, ImportError):
    """A plugin module or entry point failed to import or to register."""


class CheckpointError(ConvBertError, ValueError):
    """A checkpoint directory or file is missing, corrupt, unsafe or does not match the model."""


class ShapeMismatchError(CheckpointError, RuntimeError):
    """A checkpoint tensor's shape differs from the model's (a RuntimeError too, as transformers raises)."""


class InputError(ConvBertError, ValueError):
    """A forward() input is malformed (shape, range or length)."""


class NotExpressibleError(ConfigError):
    """A composition a format cannot express: Hugging Face's ConvBertConfig, or an export (ONNX, export)."""


class TrainingDiverged(ConvBertError):
    """The training loss became NaN or infinite; the stage stopped with the weights of the step before."""
