"""From a composition (a plain dict or OmegaConf node naming registered blocks) to modules.

A composition is checked against each block's parameter dataclass before anything is built, and every
error carries the key path where it went wrong (``model.layer.mixer.parts.1.kernel_size``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from torch import nn

from convbert.errors import ConfigError, ConvBertError
from convbert.registry import BlockSpec, Registry, parse_params


@dataclass
class CompositionSchema:
    """The top level of a composition; each block node below is checked by its own dataclass."""

    hidden_size: int = MISSING
    num_layers: int = MISSING
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    embedding: Any = field(default_factory=lambda: {"name": "bert"})
    layer: Any = MISSING
    head: Any = None
    plugins: list = field(default_factory=list)


_SCHEMA_SPEC = BlockSpec("model", "composition", dict, CompositionSchema, "convbert")


def parse_composition(composition: Mapping[str, Any] | DictConfig, path: str = "model") -> CompositionSchema:
    """Validate the top-level keys of a composition (unknown keys list the valid ones)."""
    if isinstance(composition, DictConfig):
        composition = OmegaConf.to_container(composition, resolve=True)
    if not isinstance(composition, Mapping):
        raise ConfigError(f"{path}: a composition is a mapping, got {type(composition).__name__}")
    parsed = parse_params(_SCHEMA_SPEC, dict(composition), path)
    if parsed.hidden_size <= 0 or parsed.num_layers < 0:
        raise ConfigError(
            f"{path}: hidden_size must be > 0 and num_layers >= 0, "
            f"got {parsed.hidden_size}, {parsed.num_layers}"
        )
    return parsed


@dataclass
class BuildContext:
    """What every factory needs besides its own parameters: the model width and where it is in the tree."""

    registry: Registry
    hidden_size: int
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    path: str = "model"
    shared: dict = field(default_factory=dict)

    def build(self, kind: str, node: Any, key: str, **overrides: Any) -> nn.Module:
        """Build a child block from its node; ``overrides`` fill parameters the parent decides."""
        path = f"{self.path}.{key}"
        if isinstance(node, str):
            node = {"name": node}
        if isinstance(node, DictConfig):
            node = OmegaConf.to_container(node, resolve=True)
        node = dict(node)
        for k, v in overrides.items():
            if node.get(k) is None:
                node[k] = v
        spec, params = self.registry.parse(kind, node, path)
        child = dataclasses.replace(self, path=path)
        try:
            module = spec.factory(params, child)
        except ConvBertError:
            raise
        except Exception as exc:
            raise ConfigError(f"{path}: building {kind} block {spec.name!r} failed: {exc}") from exc
        module.block_name = spec.name  # type: ignore[assignment]
        return module


def resolve_registry(composition: CompositionSchema, registry: Registry | None) -> Registry:
    """The registry that builds ``composition``: the one passed in (its ``plugins:`` are loaded into it: the
    caller's own), else the process-wide one, extended by those modules in a child registry, so that a
    composition never changes the global."""
    if registry is not None:
        if composition.plugins:
            registry.load_modules(composition.plugins)
        return registry
    return Registry.default().with_modules(composition.plugins)



def _normalize_node(registry: Registry, kind: str, node: Any, path: str) -> Any:
    if node is None:
        return None
    spec, params = registry.parse(kind, node, path)
    out: dict[str, Any] = {"name": spec.name}
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        # nested blocks: a field named after a kind holds that kind; `parts` holds the parent's kind
        child_kind = f.name if f.name in registry.specs else (kind if f.name == "parts" else None)
        if child_kind and f.name == "parts" and isinstance(value, dict):  # roles, in order: the list form
            value = [_normalize_node(registry, child_kind, v, f"{path}.parts.{k}") for k, v in value.items()]
        elif child_kind and isinstance(value, list):
            value = [
                _normalize_node(registry, child_kind, v, f"{path}.{f.name}.{i}") for i, v in enumerate(value)
            ]
        elif child_kind and isinstance(value, (dict, str)):
            value = _normalize_node(registry, child_kind, value, f"{path}.{f.name}")
        out[f.name] = value
    return out


def normalize_composition(
    composition: Mapping[str, Any] | DictConfig, registry: Registry | None = None
) -> dict:
    """The composition with every default filled in: equal results mean the same model.

    Each registry keeps the results it gave (a run asks for the same composition several times: its plan,
    each stage's check and build), so the work is done once per composition."""
    parsed = parse_composition(composition)
    registry = resolve_registry(parsed, registry)
    key = json.dumps(dataclasses.asdict(parsed), sort_keys=True, default=repr)
    done = registry.normalized.get(key)
    if done is not None:
        return copy.deepcopy(done)
    out = {
        "hidden_size": parsed.hidden_size,
        "num_layers": parsed.num_layers,
        "layer_norm_eps": float(parsed.layer_norm_eps),
        "initializer_range": float(parsed.initializer_range),
        "embedding": _normalize_node(registry, "embedding", parsed.embedding, "model.embedding"),
        "layer": _normalize_node(registry, "layer", parsed.layer, "model.layer"),
    }
    if parsed.head is not None:
        out["head"] = _normalize_node(registry, "head", parsed.head, "model.head")
    registry.normalized[key] = copy.deepcopy(out)
    return out
