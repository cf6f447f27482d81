"""The registry: blocks (kind -> name -> BlockSpec) and training tasks (name -> TaskSpec), filled by plugins.

Built-ins are plugins like any other: every module of ``convbert.blocks`` and ``convbert.heads`` that
implements the ``convbert_register_blocks`` hook is found by a scan of those packages and loads first, so a
new built-in is one new module (plus its YAML) and no list. Then every installed distribution's entry points
in group ``convbert`` load (skipped when ``CONVBERT_DISABLE_PLUGIN_AUTOLOAD=1``), then modules a composition
names under ``plugins:``.

Two sides: blocks and heads (the model core) load with the registry; training tasks load the first time
``tasks``, ``task()`` or ``config_dirs`` is used (the training side): the modules of ``convbert.train.tasks``,
then every plugin's ``convbert_register_tasks`` hook. So building a model never imports ``convbert.train``.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import os
import pkgutil
from collections import ChainMap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pluggy
from omegaconf import DictConfig, OmegaConf

from convbert import hookspecs, settings
from convbert.checking import check_dataclass
from convbert.errors import ConfigError, DuplicateBlockError, PluginError, UnknownBlockError

KINDS = ("embedding", "mixer", "ffn", "layer", "head")
ENTRY_POINT_GROUP = "convbert"
DISABLE_AUTOLOAD_ENV = settings.DISABLE_PLUGIN_AUTOLOAD

# Scanned for modules implementing the hook: the built-in blocks and task heads (model side), the training
# tasks (training side, loaded on first use).
BUILTIN_PACKAGES = ("convbert.blocks", "convbert.heads")
BUILTIN_TASK_PACKAGES = ("convbert.train.tasks",)
HOOK = "convbert_register_blocks"
TASKS_HOOK = "convbert_register_tasks"



def dataclass_defaults(schema: type) -> dict[str, Any]:
    """A dataclass's fields with their defaults ("???" for required ones): what listings show."""
    out = {}
    for f in dataclasses.fields(schema):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            out[f.name] = f.default_factory()  # type: ignore[misc]
        else:
            out[f.name] = "???"
    return out

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
    # Heads only, for Hugging Face's flat config.json: param -> the field it is saved in, and the head node
    # from_pretrained rebuilds from a ConvBertConfig. A head without ``from_config`` saves its node whole.
    config_fields: Mapping[str, str] | None = None
    from_config: Callable[[Any], dict[str, Any]] | None = None

    def defaults(self) -> dict[str, Any]:
        """The parameters with their defaults (MISSING for required ones), for listings and docs."""
        return dataclass_defaults(self.params)


@dataclass(frozen=True)
class TaskSpec:
    """One training task: ``task`` is its class (``convbert.train.tasks.base.Task``), which carries the config
    schema, the data it reads, its head, model class, metric and baseline."""

    name: str
    task: type
    provider: str
    distribution: str | None = None
    version: str | None = None


def _closest_first(name: str, candidates: Iterable[str]) -> list[str]:
    candidates = sorted(candidates)
    close = difflib.get_close_matches(name, candidates, n=len(candidates), cutoff=0.0)
    return close or candidates


@dataclass
class Registry:
    """Blocks by kind and name. ``Registry.default()`` is the process-wide one with every plugin loaded."""

    specs: dict[str, dict[str, BlockSpec]] = field(default_factory=lambda: {k: {} for k in KINDS})
    _tasks: dict[str, TaskSpec] = field(default_factory=dict)
    _config_dirs: list[str] = field(default_factory=list)  # plugins' Hydra config dirs, for the search path
    _provider: tuple[str, str | None, str | None] = ("<direct>", None, None)
    _pm: pluggy.PluginManager | None = None
    _tasks_pending: bool = False  # load_builtins ran: the training side loads on first use
    _tasks_loaded: bool = False
    _distributions: dict[str, str | None] = field(default_factory=dict)  # plugin name -> its distribution
    _parent: Registry | None = None  # a child (``with_modules``) sees its parent's registrations
    _children: dict[tuple[str, ...], Registry] = field(default_factory=dict)
    # normalize_composition's results with this registry (a composition's JSON -> its normalized form)
    normalized: dict[str, dict] = field(default_factory=dict, repr=False, compare=False)

    # -- the training side, loaded on first use ---------------------------------------------------
    @property
    def tasks(self) -> Mapping[str, TaskSpec]:
        """Training tasks by name (loads the training side on first use)."""
        self.load_tasks()
        if self._parent is not None:
            return ChainMap(self._tasks, self._parent.tasks)
        return self._tasks

    @property
    def config_dirs(self) -> list[str]:
        """Plugins' Hydra config dirs (loads the training side on first use: a task's config dir is added
        by its hook), and, last, one holding ``<kind>/<name>.yaml`` (``name: <name>``) for every registered
        block that has no such file anywhere, so that any block is selectable by its slot on the command line
        (``mixer@model.layer.mixer.parts.conv=token_shift``) without its plugin shipping config files."""
        self.load_tasks()
        if self._parent is not None:
            return [*self._parent.config_dirs, *(d for d in self._config_dirs
                                                 if d not in self._parent.config_dirs)]
        generated = self._block_option_dir()
        return [*self._config_dirs, *([generated] if generated else [])]

    def _block_option_dir(self) -> str | None:
        """The directory of generated block options (None when every block has its file)."""
        from convbert.paths import CONF_DIR

        roots = [Path(CONF_DIR), *map(Path, self._config_dirs)]
        missing = sorted((kind, name) for kind in KINDS for name in self.specs[kind]
                         if not any((root / kind / f"{name}.yaml").is_file() for root in roots))
        if not missing:
            return None
        listing = "\n".join(f"{kind}/{name}" for kind, name in missing)
        folder = settings.cache_dir() / "block-options" / hashlib.sha256(listing.encode()).hexdigest()[:16]
        for kind, name in missing:
            file = folder / kind / f"{name}.yaml"
            if not file.is_file():
                file.parent.mkdir(parents=True, exist_ok=True)
                spec = self.specs[kind][name]
                temporary = file.with_suffix(f".{os.getpid()}.tmp")
                temporary.write_text(f"# {kind} block `{name}` ({spec.provider}), generated by convbert: its "
                                     f"parameters live in its dataclass\nname: {name}\n", encoding="utf-8")
                os.replace(temporary, file)
        return str(folder)

    def with_modules(self, modules: Iterable[str]) -> Registry:
        """This registry plus the plugin modules a composition lists under ``plugins:``, as a child registry
        (cached): the process-wide registry is never changed by a composition that passes through it."""
        key = tuple(modules)
        if not key:
            return self
        child = self._children.get(key)
        if child is None:
            child = Registry(specs={k: ChainMap({}, v) for k, v in self.specs.items()}, _parent=self,
                             _tasks_pending=True)
            child.load_modules(key)
            self._children[key] = child
        return child

    def load_tasks(self) -> None:
        """The training side: the built-in task modules, then every registered plugin's
        ``convbert_register_tasks`` hook. Runs once, only after ``load_builtins``."""
        if not self._tasks_pending or self._tasks_loaded:
            return
        self._tasks_loaded = True
        for package_name in BUILTIN_TASK_PACKAGES if self._parent is None else ():  # a child: its parent's
            self._scan(package_name)
        pm = self.plugin_manager
        for impl in pm.hook.convbert_register_tasks.get_hookimpls():
            self._call(impl, pm.get_name(impl.plugin))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def default(cls) -> Registry:
        global _DEFAULT
        if _DEFAULT is None:
            registry = cls()
            registry.load_builtins()
            if not _autoload_disabled():
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
        config_fields: Mapping[str, str] | None = None,
        from_config: Callable[[Any], dict[str, Any]] | None = None,
    ) -> BlockSpec:
        """Add a block. ``params`` must be a dataclass: its fields are the block's config keys.

        ``example``: parameters the contract suite (``convbert.testing``) builds the block with.
        ``config_fields`` / ``from_config`` (heads): how the head lives in Hugging Face's flat config.json.
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
            raise _registered_twice(f"{kind} block {name!r}", existing, provider, dist)
        spec = BlockSpec(kind, name, factory, params, provider, dist, version, description or _doc(factory),
                         example, config_fields, from_config)
        self.specs[kind][name] = spec
        return spec

    def register_task(self, task: type) -> TaskSpec:
        """Add a training task: a subclass of ``convbert.train.tasks.base.Task`` with its ``name`` set.
        ``convbert-train task=<its option>`` then trains it (the option is a ``conf/task/*.yaml``)."""
        name = getattr(task, "name", None)
        provider, dist, version = self._provider
        if not isinstance(name, str) or not name:
            raise PluginError(f"task {task!r} from {provider}: set the class attribute `name`")
        missing = [a for a in ("config_class", "data_name", "data_class") if getattr(task, a, None) is None]
        if missing:
            raise PluginError(f"task {name!r} from {provider}: set {', '.join(missing)}")
        existing = self._tasks.get(name)
        if existing is not None:
            raise _registered_twice(f"task {name!r}", existing, provider, dist)
        spec = TaskSpec(name, task, provider, dist, version)
        self._tasks[name] = spec
        return spec

    def add_config_dir(self, path: str | os.PathLike) -> None:
        """Offer a directory of Hydra config groups (``mixer/<name>.yaml`` ...) for the training search path.

        A plugin calls this inside its ``convbert_register_blocks`` hook, next to ``register``.
        """
        path = os.path.abspath(os.fspath(path))
        if not os.path.isdir(path):
            raise PluginError(f"{self._provider[0]}: config dir {path!r} does not exist")
        if path not in self._config_dirs:
            self._config_dirs.append(path)

    def register_plugin(
        self, plugin: object, name: str | None = None, distribution: str | None = None
    ) -> None:
        """Register a plugin object or module (anything with a ``convbert_register_blocks`` hookimpl)."""
        pm = self.plugin_manager
        if pm.is_registered(plugin) or (self._parent is not None and self._parent._has_plugin(plugin)):
            return  # importing a plugin module twice must not register its blocks twice
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        try:
            pm.register(plugin, name=name)
            pm.check_pending()
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PluginError(f"plugin {name!r} could not be registered: {exc}") from exc
        self._distributions[name] = distribution
        hooks = [pm.hook.convbert_register_blocks]
        if self._tasks_loaded:  # the training side is up: a plugin registered now adds its tasks at once
            hooks.append(pm.hook.convbert_register_tasks)
        for hook in hooks:
            for impl in hook.get_hookimpls():
                if impl.plugin is plugin:
                    self._call(impl, name)

    def _has_plugin(self, plugin: object) -> bool:
        return self.plugin_manager.is_registered(plugin) or (
            self._parent is not None and self._parent._has_plugin(plugin))

    def _call(self, impl: Any, name: str) -> None:
        """Run one plugin's hook implementation with this registry, naming the plugin on failure."""
        distribution = self._distributions.get(name)
        version = None
        if distribution is not None:
            try:
                version = metadata.version(distribution)
            except metadata.PackageNotFoundError:
                version = None
        self._provider = (name, distribution, version)
        try:
            impl.function(registry=self)
        except (DuplicateBlockError, PluginError, ConfigError):
            raise
        except Exception as exc:  # a plugin's own bug: name the plugin, keep the cause
            raise PluginError(
                f"plugin {name!r} failed while registering its {impl.function.__name__.split('_')[-1]}: "
                f"{exc!r}"
            ) from exc
        finally:
            self._provider = ("<direct>", None, None)

    def load_builtins(self) -> None:
        """Register every module of the built-in packages that implements the hook (no list to keep); the
        built-in training tasks follow on first use (``load_tasks``)."""
        for package_name in BUILTIN_PACKAGES:
            self._scan(package_name)
        self._tasks_pending = True

    def _scan(self, package_name: str) -> None:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__, prefix=f"{package_name}."):
            module = importlib.import_module(info.name)
            if hasattr(module, HOOK) or hasattr(module, TASKS_HOOK):
                self.register_plugin(module, info.name, distribution="convbert")

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
            listed = ", ".join(_closest_first(str(name), self.specs[kind])) or "(none)"
            raise UnknownBlockError(
                f"unknown {kind} block {name!r}{where}. Registered {kind} blocks (closest first): "
                f"{listed}. {_plugins_line(self)} Install the plugin that provides it or list its module "
                "under `plugins:`."
            )
        return spec

    def task(self, name: str, path: str = "task.name") -> TaskSpec:
        spec = self.tasks.get(name)
        if spec is None:
            listed = ", ".join(_closest_first(str(name), self.tasks)) or "(none)"
            close = difflib.get_close_matches(str(name), list(self.tasks), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownBlockError(
                f"{path}: unknown task {name!r}.{hint} Registered tasks (closest first): {listed}. "
                f"{_plugins_line(self)} Choose one with task=<option> (the files in conf/task), or install "
                "the plugin that provides it."
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
    """Type-check ``values`` against ``spec.params``; errors name the key and the fix."""
    return check_dataclass(spec.params, values, path, owner=f"{spec.kind} block {spec.name!r}")


def plugin_distributions() -> list[str]:
    """The installed distributions that declare ``convbert`` entry points (third-party plugins)."""
    return sorted({ep.dist.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.dist})


def _plugins_line(registry: Registry) -> str:
    """Which installed distributions provide plugins, and which of them this registry has not loaded."""
    found = plugin_distributions()
    if not found:
        return "No plugin distributions are installed."
    loaded = {s.distribution for kind in registry.specs.values() for s in kind.values()}
    loaded |= {s.distribution for s in registry._tasks.values()}
    unloaded = [d for d in found if d not in loaded]
    why = "CONVBERT_DISABLE_PLUGIN_AUTOLOAD is set" if _autoload_disabled() else "not in this registry"
    off = f" (not loaded: {', '.join(unloaded)}; {why})" if unloaded else ""
    return f"Installed plugin distributions: {', '.join(found)}{off}."


def _autoload_disabled() -> bool:
    return settings.plugin_autoload_disabled()


def _registered_twice(what: str, existing: BlockSpec | TaskSpec, provider: str,
                      dist: str | None) -> DuplicateBlockError:
    return DuplicateBlockError(
        f"{what} is registered twice: by {existing.provider}{_dist_suffix(existing.distribution)} and by "
        f"{provider}{_dist_suffix(dist)}. Rename one of them or uninstall one of the two plugins.")


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
