"""The block registry: kind -> name -> BlockSpec, filled by pluggy plugins.

Built-in blocks are plugins like any other: ``convbert/blocks/*`` and ``convbert/heads/*`` implement the
``convbert_register_blocks`` hook and load first. Then every installed distribution's entry points in group
``convbert`` load (skipped when ``CONVBERT_DISABLE_PLUGIN_AUTOLOAD=1``), then modules a composition names
under ``plugins:``. Registration never depends on the user importing the right module.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from convbert import hookspecs
from convbert.errors import ConfigError, DuplicateBlockError, PluginError, UnknownBlockError

KINDS = ("embedding", "mixer", "ffn", "layer", "head")
ENTRY_POINT_GROUP = "convbert"
DISABLE_AUTOLOAD_ENV = "CONVBERT_DISABLE_PLUGIN_AUTOLOAD"

BUILTIN_PLUGINS = (
    "convbert.blocks.embeddings",
    "convbert.blocks.self_attention",
    "convbert.blocks.span_conv",
    "convbert.blocks.depthwise_conv",
    "convbert.blocks.lightweight_conv",
    "convbert.blocks.dynamic_conv",
    "convbert.blocks.mixed",
    "convbert.blocks.ffn",
    "convbert.blocks.layer",
    "convbert.heads.masked_lm",
    "convbert.heads.classification",
    "convbert.heads.question_answering",
    "convbert.heads.multiple_choice",
    "convbert.heads.replaced_token_detection",
)

# Blocks that live in the separately installable packages under plugins/: named in the unknown-block
# error so that a user who lacks the package learns which one to install.
_EXTRA_MIXERS = "convbert-extra-mixers (pip install ./plugins/convbert-extra-mixers)"
KNOWN_EXTERNAL_BLOCKS: dict[tuple[str, str], str] = {
    ("mixer", "fourier"): _EXTRA_MIXERS,
    ("mixer", "linear_attention"): _EXTRA_MIXERS,
}


@dataclass(frozen=True)
class BlockSpec:
    """One registration: what a config's ``name:`` selects and how its other keys are checked."""

    kind: str
    name: str
    factory: Callable[..., Any]
    params: type
    provider: str
    distribution: str | None = None
    version: str | None = None
    description: str = ""
    example: dict | None = None  # a node the contract suite builds (defaults when None)

    def defaults(self) -> dict[str, Any]:
        """The parameters with their defaults (MISSING for required ones), for listings and docs."""
        out = {}
        for f in dataclasses.fields(self.params):
            if f.default is not dataclasses.MISSING:
                out[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                out[f.name] = f.default_factory()  # type: ignore[misc]
            else:
                out[f.name] = "???"
        return out


def _closest_first(name: str, candidates: Iterable[str]) -> list[str]:
    candidates = sorted(candidates)
    close = difflib.get_close_matches(name, candidates, n=len(candidates), cutoff=0.0)
    return close or candidates


@dataclass
class Registry:
    """Blocks by kind and name. ``Registry.default()`` is the process-wide one with every plugin loaded."""

    specs: dict[str, dict[str, BlockSpec]] = field(default_factory=lambda: {k: {} for k in KINDS})
    config_dirs: list[str] = field(default_factory=list)  # plugins' Hydra config dirs, for the search path
    _provider: tuple[str, str | None, str | None] = ("<direct>", None, None)
    _pm: pluggy.PluginManager | None = None

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def default(cls) -> Registry:
        global _DEFAULT
        if _DEFAULT is None:
            registry = cls()
            registry.load_builtins()
            if os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip() not in ("1", "true", "yes"):
                registry.load_entry_points()
            _DEFAULT = registry
        return _DEFAULT

    @property
    def plugin_manager(self) -> pluggy.PluginManager:
        if self._pm is None:
            pm = pluggy.PluginManager(hookspecs.PROJECT)
            pm.add_hookspecs(hookspecs)
            self._pm = pm
        return self._pm

    # -- registration -------------------------------------------------------------------------
    def register(
        self,
        kind: str,
        name: str,
        factory: Callable[..., Any],
        params: type,
        description: str = "",
        example: dict | None = None,
    ) -> BlockSpec:
        """Add a block. ``params`` must be a dataclass: its fields are the block's config keys.

        ``example``: parameters the contract suite (``convbert.testing``) builds the block with.
        """
        if kind not in self.specs:
            raise ConfigError(
                f"cannot register {name!r}: unknown kind {kind!r}; kinds are {', '.join(KINDS)}"
            )
        if not dataclasses.is_dataclass(params):
            raise PluginError(
                f"block {kind} {name!r} from {self._provider[0]}: params must be a dataclass, got {params!r}"
            )
        provider, dist, version = self._provider
        existing = self.specs[kind].get(name)
        if existing is not None:
            raise DuplicateBlockError(
                f"{kind} block {name!r} is registered twice: by {existing.provider}"
                f"{_dist_suffix(existing.distribution)} and by {provider}{_dist_suffix(dist)}. "
                "Rename one of them or uninstall one of the two plugins."
            )
        spec = BlockSpec(
            kind, name, factory, params, provider, dist, version, description or _doc(factory), example
        )
        self.specs[kind][name] = spec
        return spec

    def add_config_dir(self, path: str | os.PathLike) -> None:
        """Offer a directory of Hydra config groups (``mixer/<name>.yaml`` ...) for the training search path.

        A plugin calls this inside its ``convbert_register_blocks`` hook, next to ``register``.
        """
        path = os.path.abspath(os.fspath(path))
        if not os.path.isdir(path):
            raise PluginError(f"{self._provider[0]}: config dir {path!r} does not exist")
        if path not in self.config_dirs:
            self.config_dirs.append(path)

    def register_plugin(
        self, plugin: object, name: str | None = None, distribution: str | None = None
    ) -> None:
        """Register a plugin object or module (anything with a ``convbert_register_blocks`` hookimpl)."""
        pm = self.plugin_manager
        if pm.is_registered(plugin):
            return  # importing a plugin module twice must not register its blocks twice
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        try:
            pm.register(plugin, name=name)
            pm.check_pending()
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PluginError(f"plugin {name!r} could not be registered: {exc}") from exc
        version = None
        if distribution is not None:
            try:
                version = metadata.version(distribution)
            except metadata.PackageNotFoundError:
                version = None
        for impl in pm.hook.convbert_register_blocks.get_hookimpls():
            if impl.plugin is plugin:
                self._provider = (name, distribution, version)
                try:
                    impl.function(registry=self)
                except (DuplicateBlockError, PluginError, ConfigError):
                    raise
                except Exception as exc:  # a plugin's own bug: name the plugin, keep the cause
                    raise PluginError(
                        f"plugin {name!r} failed while registering its blocks: {exc!r}"
                    ) from exc
                finally:
                    self._provider = ("<direct>", None, None)

    def load_builtins(self) -> None:
        for module_name in BUILTIN_PLUGINS:
            self.register_plugin(importlib.import_module(module_name), module_name, distribution="convbert")

    def load_entry_points(self) -> None:
        """Load every installed distribution's entry points in group ``convbert``."""
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist is not None else None
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"plugin entry point {ep.name!r} ({ep.value}) of distribution {dist!r} failed to import: "
                    f"{exc!r}. Fix or uninstall that package, or set {DISABLE_AUTOLOAD_ENV}=1 to skip "
                    "entry-point plugins."
                ) from exc
            self.register_plugin(plugin, name=f"{dist or '?'}:{ep.name}", distribution=dist)

    def load_modules(self, modules: Iterable[str]) -> None:
        """Import and register the modules a config lists under ``plugins:``."""
        for module_name in modules:
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                raise PluginError(
                    f"plugin module {module_name!r} (listed under `plugins:`) failed to import: {exc!r}"
                ) from exc
            self.register_plugin(module, module_name)

    # -- lookup -------------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        return sorted(self.specs[kind])

    def get(self, kind: str, name: str, path: str = "") -> BlockSpec:
        if kind not in self.specs:
            raise ConfigError(f"unknown block kind {kind!r}; kinds are {', '.join(KINDS)}")
        spec = self.specs[kind].get(name)
        if spec is None:
            where = f" at {path}" if path else ""
            hint = ""
            if (kind, name) in KNOWN_EXTERNAL_BLOCKS:
                hint = (
                    f" {kind} {name!r} is provided by the plugin package "
                    f"{KNOWN_EXTERNAL_BLOCKS[kind, name]}."
                )
            listed = ", ".join(_closest_first(str(name), self.specs[kind])) or "(none)"
            raise UnknownBlockError(
                f"unknown {kind} block {name!r}{where}.{hint} Registered {kind} blocks (closest first): "
                f"{listed}. Install the plugin that provides it or list its module under `plugins:`."
            )
        return spec

    def list_blocks(self, kind: str | None = None) -> list[BlockSpec]:
        kinds = [kind] if kind else list(KINDS)
        return [self.specs[k][n] for k in kinds for n in sorted(self.specs[k])]

    # -- parameters -----------------------------------------------------------------------------
    def parse(self, kind: str, node: Mapping[str, Any] | DictConfig, path: str) -> tuple[BlockSpec, Any]:
        """Check a block node (``name`` plus parameters) against its dataclass; return (spec, params)."""
        if isinstance(node, str):
            node = {"name": node}
        if not isinstance(node, (Mapping, DictConfig)):
            raise ConfigError(f"{path}: expected a {kind} block node with a `name:` key, got {node!r}")
        values = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
        if "name" not in values:
            raise ConfigError(
                f"{path}: a {kind} block needs `name:`; "
                f"registered {kind} blocks: {', '.join(self.names(kind))}"
            )
        spec = self.get(kind, values.pop("name"), path)
        return spec, parse_params(spec, values, path)


def parse_params(spec: BlockSpec, values: Mapping[str, Any], path: str) -> Any:
    """Type-check ``values`` against ``spec.params`` with OmegaConf; errors name the key and the fix."""
    valid = [f.name for f in dataclasses.fields(spec.params)]
    unknown = [k for k in values if k not in valid]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"{path}.{key}: unknown key for {spec.kind} block {spec.name!r}.{hint} "
            f"Valid keys: {', '.join(valid)}"
        )
    try:
        schema = OmegaConf.structured(spec.params)
        merged = OmegaConf.merge(schema, values)
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or getattr(exc, "key", None) or "?"
        expected = ""
        for f in dataclasses.fields(spec.params):
            if f.name == str(key).split(".")[0]:
                expected = f" (expected {getattr(f.type, '__name__', f.type)})"
        msg = str(exc).splitlines()[0]
        raise ConfigError(f"{path}.{key}: {msg}{expected} in {spec.kind} block {spec.name!r}") from exc


def _dist_suffix(dist: str | None) -> str:
    return f" (distribution {dist})" if dist else ""


def _doc(obj: Any) -> str:
    doc = getattr(obj, "__doc__", None) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


_DEFAULT: Registry | None = None


def reset_default_registry() -> None:
    """Forget the process-wide registry (tests, or after installing a plugin in a running process)."""
    global _DEFAULT
    _DEFAULT = None


def list_blocks(kind: str | None = None) -> list[BlockSpec]:
    """Every registered block (of one kind if given), from the process-wide registry."""
    return Registry.default().list_blocks(kind)
