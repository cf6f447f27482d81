"""The code's layout stays as designed: no import circles, no hand-kept list of built-in components."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path

import pytest

import convbert
import convbert.blocks
from convbert.registry import BUILTIN_PACKAGES, HOOK, Registry

REPO = Path(__file__).resolve().parent.parent


def _checker():
    spec = importlib.util.spec_from_file_location("import_cycles", REPO / "scripts" / "import_cycles.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["import_cycles"] = module
    spec.loader.exec_module(module)
    return module


def test_no_import_circle_in_convbert() -> None:
    checker = _checker()
    known = checker.modules(REPO, "convbert")
    graph = {name: checker.imports(name, path, known) for name, path in known.items()}
    assert checker.cycles(graph) == []
    assert "convbert.train.job" in graph["convbert.train.cli"]  # the checker does see real imports


# The base every layer may use: errors, settings, atomic file writes, and the tiny shared definitions.
BASE = ("convbert.errors", "convbert.settings", "convbert.atomic_files", "convbert.capture",
        "convbert.labels")


@pytest.mark.parametrize(("package", "may_import"), [
    ("convbert.kernels", ("convbert.kernels",)),
    ("convbert.interop", ("convbert.interop",)),  # key maps, files, Hub: below the models they serve
])
def test_low_layers_import_nothing_above_them(package: str, may_import: tuple[str, ...]) -> None:
    """kernels/ and interop/ sit under the model core: an import back up would tie them to what they serve.
    A deprecation shim (a moved module's old name) is the one exception."""
    checker = _checker()
    known = checker.modules(REPO, "convbert")
    upward = {}
    for name, path in known.items():
        if not name.startswith(package) or "sys.modules[__name__] = _moved" in path.read_text():
            continue
        above = sorted(d for d in checker.imports(name, path, known)
                       if d.startswith("convbert.") and not d.startswith((*may_import, *BASE)))
        if above:
            upward[name] = above
    assert upward == {}
    assert any(name.startswith(package) for name in known)


def test_the_checker_finds_a_circle() -> None:
    assert _checker().cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_builtin_module_with_the_hook_is_registered_by_the_scan() -> None:
    """Adding a built-in is adding a module: what implements the hook in the scanned packages is loaded."""
    registry = Registry()
    registry.load_builtins()
    loaded = {name for name, _ in registry.plugin_manager.list_name_plugin()}
    for package_name in BUILTIN_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__, prefix=f"{package_name}."):
            has_hook = hasattr(importlib.import_module(info.name), HOOK)
            assert (info.name in loaded) == has_hook, info.name
    assert {"pretrain_rtd", "sequence_classification"} <= set(registry.tasks)


NEW_BLOCK = '''
"""Identity mixing: every token keeps its own state (a floor for mixer ablations)."""
from dataclasses import dataclass

from torch import nn

from convbert.hookspecs import hookimpl


@dataclass
class IdentityParams:
    scale: float = 1.0


class Identity(nn.Module):
    def __init__(self, params, ctx):
        super().__init__()
        self.scale = params.scale

    def forward(self, hidden, mask, output_attentions=False):
        return hidden * self.scale, None


@hookimpl
def convbert_register_blocks(registry):
    registry.register("mixer", "identity_for_test", Identity, IdentityParams)
'''


def test_a_new_builtin_block_is_one_new_module(tmp_path: Path, monkeypatch) -> None:
    """A module dropped into convbert.blocks' search path registers with no other edit."""
    (tmp_path / "identity_for_test.py").write_text(NEW_BLOCK)
    monkeypatch.setattr(convbert.blocks, "__path__", [*convbert.blocks.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "convbert.blocks.identity_for_test", raising=False)
    registry = Registry()
    registry.load_builtins()
    assert registry.get("mixer", "identity_for_test").distribution == "convbert"


def test_one_module_reads_every_convbert_variable_and_none_is_written_at_import() -> None:
    """convbert/settings.py names and documents every CONVBERT_* variable; no other module of the package
    reads one by its literal name, and no module writes the environment at import."""
    import ast
    import re

    from convbert import settings

    package = Path(convbert.__file__).resolve().parent
    named = set()
    for path in package.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        named |= set(re.findall(r"CONVBERT_[A-Z_]+", text))
        if path.name != "settings.py":
            assert not re.search(r"environ(\.get)?[\[(]\s*[\"']CONVBERT_", text), path
        for node in ast.parse(text).body:  # module level: no os.environ writes, no putenv
            source = ast.get_source_segment(text, node) or ""
            if isinstance(node, (ast.Expr, ast.Assign)) and "environ" in source:
                assert not re.search(r"environ(\[|\.setdefault|\.update)|putenv", source), (path, source)
    assert named == set(settings.VARIABLES)
    for name in settings.VARIABLES:
        assert f"``{name}``" in settings.__doc__


@pytest.mark.parametrize("name", ["blocks", "predict", "export", "convert"])
def test_the_command_line_programs_live_in_convbert_cli_and_their_old_names_still_import(name: str) -> None:
    import importlib
    import warnings

    new = importlib.import_module(f"convbert.cli.{name}")
    sys.modules.pop(f"convbert.{name}_cli", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = importlib.import_module(f"convbert.{name}_cli")
    assert old is new and callable(old.main)
    assert any(issubclass(w.category, DeprecationWarning) and f"convbert.cli.{name}" in str(w.message)
               for w in caught)


def test_console_scripts_point_into_convbert_cli() -> None:
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert all(target.startswith("convbert.cli.") for target in scripts.values()), scripts
    for target in scripts.values():
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function))


def test_the_plugins_under_plugins_import_only_the_public_plugin_surface() -> None:
    import ast

    imported = set()
    for path in (REPO / "plugins").glob("*/src/**/*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "convbert":
                imported.add((path.name, node.module))
            elif isinstance(node, ast.Import):
                imported |= {(path.name, a.name) for a in node.names if a.name.split(".")[0] == "convbert"}
    assert imported and {module for _, module in imported} == {"convbert.plugin"}, sorted(imported)
