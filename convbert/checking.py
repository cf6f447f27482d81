"""One checker for every dataclass-shaped config node: block parameters, task, data and trainer nodes.

A node is merged into its dataclass with OmegaConf, so defaults are filled and types enforced; an unknown
key is refused with the closest valid key and the list of valid ones, a wrong type with the expected type.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from convbert.errors import ConfigError


def as_dict(node: Any, path: str) -> dict[str, Any]:
    """A plain dict of ``node`` (a DictConfig is resolved); anything but a mapping is refused."""
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    if not isinstance(node, Mapping):
        raise ConfigError(f"{path}: expected a mapping of keys to values, got {node!r}")
    return dict(node)


def unknown_key_error(path: str, key: str, valid: list[str], owner: str = "") -> ConfigError:
    """``<path>.<key>: unknown key [for <owner>]. Did you mean ...? Valid keys [of <path>]: ...``"""
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    where = f"{path}.{key}" if path else key
    whose = f" for {owner}" if owner else ""
    of = f" of {path}" if path and not owner else ""
    return ConfigError(f"{where}: unknown key{whose}.{hint} Valid keys{of}: {', '.join(valid)}")


def check_dataclass(schema: type, node: Any, path: str, owner: str = "") -> Any:
    """``node`` as an instance of the dataclass ``schema``: defaults filled, unknown keys and wrong types
    refused naming the key path (``owner``, e.g. "mixer block 'span_conv'", says whose keys they are)."""
    values = as_dict(node, path)
    valid = [f.name for f in dataclasses.fields(schema)]
    for key in values:
        if key not in valid:
            raise unknown_key_error(path, key, valid, owner)
    try:
        node = OmegaConf.structured(schema)
        for key, value in values.items():  # assigned, not merged: a list may replace a mapping default
            node[key] = value
        return OmegaConf.to_object(node)
    except OmegaConfBaseException as exc:
        key = str(getattr(exc, "full_key", None) or getattr(exc, "key", None) or "?")
        expected = ""
        for f in dataclasses.fields(schema):
            if f.name == key.split(".")[0]:
                expected = f" (expected {getattr(f.type, '__name__', f.type)})"
        where = f" in {owner}" if owner else ""
        raise ConfigError(f"{path}.{key}: {str(exc).splitlines()[0]}{expected}{where}") from exc


def require(ok: bool, path: str, message: str) -> None:
    """Refuse a value that has the right type but not a valid value: ``<path>: <message>``."""
    if not ok:
        raise ConfigError(f"{path}: {message}")
