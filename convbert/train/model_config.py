"""The `model` config node -> a registry composition; the generator's composition; parameter counts.

A model node is a composition (``hidden_size``, ``num_layers``, ``embedding``, ``layer``, ...) plus *aliases*:
top-level keys such as ``kernel_size`` that the blocks below interpolate (``${model.kernel_size}``), so that
an ablation is one short override. An alias nothing refers to is refused (it would silently do nothing).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import re
from collections.abc import Mapping
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from convbert.composition import CompositionSchema, normalize_composition
from convbert.errors import ConfigError, ConvBertError
from convbert.modeling import build_model
from convbert.paths import CONF_DIR
from convbert.registry import Registry

COMPOSITION_KEYS = tuple(f.name for f in dataclasses.fields(CompositionSchema))


def _mentions(raw: Any, alias: str) -> bool:
    """Whether any string in ``raw`` interpolates ``${model.<alias>}``."""
    pattern = re.compile(r"\$\{model\." + re.escape(alias) + r"[}.\[]")
    if isinstance(raw, str):
        return bool(pattern.search(raw))
    if isinstance(raw, dict):
        return any(_mentions(v, alias) for v in raw.values())
    if isinstance(raw, list):
        return any(_mentions(v, alias) for v in raw)
    return False


_WIRING = re.compile(r"^\$\{model\.\w+\}$")


def _is_wiring(raw: Any) -> bool:
    """A value that only forwards model aliases: ``${model.x}``, or a mapping / list of nothing else."""
    if isinstance(raw, str):
        return bool(_WIRING.match(raw))
    if isinstance(raw, dict):
        return bool(raw) and all(_is_wiring(v) for v in raw.values())
    if isinstance(raw, list):
        return bool(raw) and all(_is_wiring(v) for v in raw)
    return False


def _drop_unmatched_wiring(registry: Registry, kind: str, raw: dict, resolved: dict) -> None:
    """Remove, in place, alias wiring aimed at parameters the block in that slot does not have."""
    spec = registry.specs.get(kind, {}).get(raw.get("name") if isinstance(raw.get("name"), str) else "")
    if spec is None:
        return  # an unknown block: the registry's own error names it
    fields = {f.name for f in dataclasses.fields(spec.params)}
    for key in list(raw):
        if key != "name" and key not in fields and _is_wiring(raw[key]):
            del raw[key]
            resolved.pop(key, None)
    for key, value in raw.items():  # nested blocks: a field named after a kind, or `parts` of the same kind
        child = key if key in registry.specs else (kind if key == "parts" else None)
        if child is None or not isinstance(resolved.get(key), type(value)):
            continue
        if isinstance(value, dict) and "name" in value:
            _drop_unmatched_wiring(registry, child, value, resolved[key])
        elif isinstance(value, dict):
            for role, part in value.items():
                if isinstance(part, dict) and isinstance(resolved[key].get(role), dict):
                    _drop_unmatched_wiring(registry, child, part, resolved[key][role])
        elif isinstance(value, list):
            for part, done in zip(value, resolved[key], strict=False):
                if isinstance(part, dict) and isinstance(done, dict):
                    _drop_unmatched_wiring(registry, child, part, done)


def model_composition(node: DictConfig | dict, path: str = "model",
                      declared: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The composition a model node describes, checked by the registry (errors name the key path).

    A model file wires its aliases into the block slots (``parts.conv.kernel_size: ${model.kernel_size}``);
    when a slot holds a block without that parameter (``mixer@model.layer.mixer.parts.conv=fourier``), the
    wiring is dropped, so swapping a block never needs its neighbours' keys removed. Keys set to values (not
    wired) are checked strictly. ``declared``: the aliases of the model file the node came from, with their
    values there. One that no block refers to any more is fine while it keeps the file's value; changed, it
    would change nothing, which is refused like a misspelled alias.
    """
    if isinstance(node, DictConfig):
        raw = OmegaConf.to_container(node, resolve=False)
        resolved = OmegaConf.to_container(node, resolve=True)
    else:
        raw, resolved = copy.deepcopy(dict(node)), copy.deepcopy(dict(node))
    if not isinstance(resolved, dict) or not resolved:
        raise ConfigError(f"{path}: expected a composition (hidden_size, num_layers, embedding, layer, ...)")
    registry = Registry.default()
    for kind in ("embedding", "layer", "head"):
        if isinstance(raw.get(kind), dict) and isinstance(resolved.get(kind), dict):
            _drop_unmatched_wiring(registry, kind, raw[kind], resolved[kind])
    composition = canonical({k: v for k, v in resolved.items() if k in COMPOSITION_KEYS})
    normalized = normalize_composition(composition)  # every block node against its parameter dataclass
    raw_composition = {k: v for k, v in raw.items() if k in COMPOSITION_KEYS}
    aliases = [k for k in resolved if k not in COMPOSITION_KEYS]
    used = [a for a in aliases if _mentions(raw_composition, a)]
    parameters = _keys(normalized)
    declared = declared or {}
    for alias in aliases:
        # an alias nothing refers to is a mistake, unless the parameter it names was set at its path instead
        # or it is the model file's own, left as it is there
        untouched = alias in declared and raw.get(alias) == declared[alias]
        if alias not in used and alias not in parameters and not untouched:
            close = difflib.get_close_matches(alias, [*used, *sorted(parameters)], n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"{path}.{alias}: unknown key: not a composition key and no block of this model refers to it "
                f"as ${{{path}.{alias}}}, so it would change nothing.{hint} This model's aliases: "
                f"{', '.join(used) or '(none)'}; composition keys: {', '.join(COMPOSITION_KEYS)}."
            )
    return composition


def mixed_roles() -> list[str]:
    """The roles of the ``mixed`` mixer's parts, as its config file names them (``parts.attention`` ...)."""
    node = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "mixer" / "mixed.yaml"), resolve=False)
    roles = []
    for entry in node.get("defaults") or []:
        target = next(iter(entry), "") if isinstance(entry, dict) else ""
        if "@parts." in target:
            roles.append(target.split("@parts.", 1)[1])
    return roles


def refuse_list_parts(key: str, value: str) -> None:
    """The list syntax of ``parts`` from before parts were keyed by role (``model.layer.mixer.parts=[...]``)
    would fail in Hydra's merge with an opaque message: say what to write instead."""
    key = key.lstrip("+~")
    if key.endswith(".parts") and value.lstrip().startswith("["):
        roles = mixed_roles()
        raise ConfigError(
            f"{key}={value}: on the command line `parts` is keyed by role ({', '.join(roles)}), not a list. "
            f"Swap a part by its role, e.g. mixer@{key}.{roles[-1]}=dynamic_conv, set its parameters with "
            f"{key}.{roles[-1]}.kernel_size=5, or drop it with ~{key}.{roles[-1]} (all heads to the others); "
            "a list of parts is still accepted in a composition given to convbert.build_model"
        )


def _model_files() -> dict[str, str]:
    """Model option name -> its YAML file: the shipped tree first, then the plugins' config dirs."""
    files: dict[str, str] = {}
    for root in (str(CONF_DIR), *Registry.default().config_dirs):
        folder = os.path.join(root, "model")
        if os.path.isdir(folder):
            for name in sorted(os.listdir(folder)):
                if name.endswith(".yaml"):
                    files.setdefault(name[:-5], os.path.join(folder, name))
    return files


def _aliases_of(path: str, files: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The aliases a model file declares, those of the model files it starts from (its defaults) included."""
    node = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    aliases: dict[str, Any] = {}
    for entry in node.get("defaults") or []:
        if isinstance(entry, str) and files and entry in files:  # another option of the `model` group
            aliases.update(_aliases_of(files[entry], files))
    aliases.update({k: v for k, v in node.items() if k not in COMPOSITION_KEYS and k != "defaults"})
    return aliases


def declared_aliases(choice: str | None, node: DictConfig | dict | None = None) -> dict[str, Any]:
    """The aliases (top-level keys that are not composition keys) of model file ``<choice>.yaml``, with their
    values as written there. Without a choice (a config from ``compose_config``, where Hydra's choices are
    gone), the model file whose aliases are the node's, most of them at the same values."""
    files = _model_files()
    if choice:
        return _aliases_of(files[choice], files) if choice in files else {}
    if node is None:
        return {}
    raw = OmegaConf.to_container(node, resolve=False) if isinstance(node, DictConfig) else dict(node)
    best, score = {}, -1
    for path in files.values():
        aliases = _aliases_of(path, files)
        if aliases and set(aliases) <= set(raw):
            same = sum(raw[k] == v for k, v in aliases.items())
            if same > score:
                best, score = aliases, same
    return best


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return {k for k in node if k != "name"} | {x for v in node.values() for x in _keys(v)}
    if isinstance(node, list):
        return {x for v in node for x in _keys(v)}
    return set()


def canonical(composition: dict[str, Any]) -> dict[str, Any]:
    """A ``grouped`` FFN with one group is the dense FFN (same modules, same weights): name it ``dense`` so
    that a standard ConvBERT stays expressible as Hugging Face's ConvBertConfig and loads in transformers."""
    composition = copy.deepcopy(composition)
    layer = composition.get("layer")
    ffn = layer.get("ffn") if isinstance(layer, dict) else None
    if isinstance(ffn, dict) and ffn.get("name") == "grouped" and ffn.get("num_groups", 1) == 1:
        layer["ffn"] = {k: v for k, v in ffn.items() if k != "num_groups"} | {"name": "dense"}
    return composition


def with_head(composition: dict[str, Any], head: dict[str, Any] | None) -> dict[str, Any]:
    out = copy.deepcopy(composition)
    out["head"] = copy.deepcopy(head)
    return out


def embedding_width(composition: dict[str, Any]) -> int:
    emb = normalize_composition(composition)["embedding"]
    return emb.get("embedding_size") or composition["hidden_size"]


def vocab_size(composition: dict[str, Any]) -> int:
    return int(normalize_composition(composition)["embedding"]["vocab_size"])


def _scale(node: Any, divisor: int) -> Any:
    """Divide every head count and FFN width in a block tree (ELECTRA's generator recipe)."""
    if isinstance(node, list):
        return [_scale(v, divisor) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("num_heads", "intermediate_size") and isinstance(value, int):
            out[key] = max(1, value // divisor)
        else:
            out[key] = _scale(value, divisor)
    return out


def generator_composition(composition: dict[str, Any], divisor: int, path: str = "task") -> dict[str, Any]:
    """ELECTRA's generator: same depth and embeddings, hidden size, heads and FFN divided by ``divisor``.

    The embedding keeps the discriminator's width (the two share it); the generator projects it to its own
    hidden size. Its masked-LM head decodes through the shared word embeddings.
    """
    comp = normalize_composition(composition)
    comp.pop("head", None)
    hidden = comp["hidden_size"]
    if hidden % divisor:
        raise ConfigError(f"{path}.generator_size_divisor={divisor} does not divide hidden_size {hidden}")
    width = comp["embedding"].get("embedding_size") or hidden
    gen = _scale(comp, divisor)
    gen["hidden_size"] = hidden // divisor
    gen["num_layers"] = comp["num_layers"]
    gen["embedding"]["embedding_size"] = width
    gen["head"] = {"name": "masked_lm", "vocab_size": comp["embedding"]["vocab_size"],
                   "embedding_size": width, "tie_word_embeddings": True}
    try:
        normalize_composition(gen)
        with torch.device("meta"):
            build_model(gen)
    except ConvBertError as exc:
        raise ConfigError(
            f"{path}.generator_size_divisor={divisor} gives a generator (hidden {hidden // divisor}) that "
            f"cannot be built: {exc}. Choose a divisor of hidden_size, num_heads and intermediate_size."
        ) from exc
    return gen


def count_parameters(composition: dict[str, Any]) -> int:
    """Parameters of the model a composition builds (tied weights once), without allocating memory."""
    with torch.device("meta"):
        model = build_model(composition)
    return model.num_parameters()
