"""Third-party plugins: an installed package adds blocks (and their configs) with no change in convbert/;
a broken one is named; autoloading can be switched off; a missing one is named by the unknown-block error."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from convbert import PluginError, UnknownBlockError, build_model, hookimpl
from convbert.registry import DISABLE_AUTOLOAD_ENV, Registry, reset_default_registry
from convbert.testing import check_block

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins" / "convbert-extra-mixers"
PLUGIN_DIST = "convbert-extra-mixers"
INSTALL = f"pip install --no-deps --no-build-isolation {PLUGIN_DIR}"


@pytest.fixture(scope="module")
def plugin_registry(tmp_path_factory) -> Registry:
    """Built-ins plus every entry point, with the plugin package installed.

    CI installs it (.ci/run); otherwise it is pip-installed into a temporary directory put on sys.path, so
    the test still exercises the real packaging (metadata, entry point, package data) offline.
    """
    with pytest.MonkeyPatch.context() as mp:
        try:
            metadata.distribution(PLUGIN_DIST)
        except metadata.PackageNotFoundError:
            target = tmp_path_factory.mktemp("site")
            done = subprocess.run([sys.executable, "-m", *INSTALL.split()[:-1], "--target", str(target),
                                   str(PLUGIN_DIR)], capture_output=True, text=True)
            if done.returncode != 0:
                pytest.fail(f"{PLUGIN_DIST} is not installed and `{INSTALL}` failed: {done.stderr[-500:]}")
            mp.syspath_prepend(str(target))
        registry = Registry()
        registry.load_builtins()
        registry.load_entry_points()
        yield registry


@pytest.fixture
def isolated_default_registry():
    """Tests that rebuild the process-wide registry leave a fresh one behind."""
    reset_default_registry()
    yield
    reset_default_registry()


def tiny(mixer: dict) -> dict:
    return {"hidden_size": 16, "num_layers": 1,
            "embedding": {"name": "bert", "vocab_size": 50, "max_position_embeddings": 16},
            "layer": {"name": "transformer", "mixer": mixer,
                      "ffn": {"name": "dense", "intermediate_size": 32}},
            "head": {"name": "sequence_classification", "num_labels": 3}}


def test_plugin_blocks_are_registered_by_their_distribution(plugin_registry: Registry) -> None:
    for name in ("fourier", "linear_attention"):
        spec = plugin_registry.get("mixer", name)
        assert (spec.distribution, spec.version) == (PLUGIN_DIST, "0.1.0")
        assert spec.provider == f"{PLUGIN_DIST}:extra_mixers"


@pytest.mark.parametrize("mixer", [
    {"name": "mixed", "num_heads": 4, "head_ratio": 2,
     "parts": [{"name": "self_attention"}, {"name": "fourier"}]},
    {"name": "linear_attention", "num_heads": 4},
    {"name": "fourier", "project": False},
])
def test_a_model_with_a_plugin_block_builds_trains_and_runs(plugin_registry: Registry, mixer: dict) -> None:
    torch.manual_seed(0)
    model = build_model(tiny(mixer), registry=plugin_registry)
    ids = torch.randint(1, 50, (3, 10))
    mask = torch.ones_like(ids)
    mask[2, 6:] = 0
    out = model(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 1, 2]))
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.logits.shape == (3, 3)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", ["fourier", "linear_attention"])
def test_plugin_blocks_keep_the_contract(plugin_registry: Registry, name: str) -> None:
    check_block(plugin_registry.get("mixer", name), plugin_registry)


def test_plugin_config_dir_reaches_hydra(plugin_registry: Registry, tmp_path: Path) -> None:
    """The plugin's conf/mixer/*.yaml compose once its dir is on Hydra's search path (the training entry
    point appends ``hydra.searchpath=[...]`` built from ``Registry.default().config_dirs``)."""
    (conf_dir,) = [d for d in plugin_registry.config_dirs if "convbert_extra_mixers" in d]
    (tmp_path / "train.yaml").write_text("defaults:\n  - _self_\n")
    searchpath = "hydra.searchpath=[" + ",".join(f"'file://{d}'" for d in plugin_registry.config_dirs) + "]"
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(tmp_path), version_base="1.3"):
            for name in ("fourier", "linear_attention"):
                cfg = compose("train", overrides=[searchpath, f"+mixer={name}"])
                assert dict(cfg.mixer) == {"name": name, **plugin_registry.get("mixer", name).defaults()}
    finally:
        GlobalHydra.instance().clear()
    for path in Path(conf_dir, "mixer").glob("*.yaml"):  # each file lists its block's parameters
        node = yaml.safe_load(path.read_text())
        assert node == {"name": path.stem, **plugin_registry.get("mixer", path.stem).defaults()}


def test_an_unknown_block_names_the_installed_plugin_distributions(fresh_registry: Registry) -> None:
    """Core names no plugin's blocks: the error lists what is registered and which installed distributions
    provide plugins (here one this registry did not load)."""
    with pytest.raises(UnknownBlockError) as info:
        build_model(tiny({"name": "fourier"}), registry=fresh_registry)
    message = str(info.value)
    assert "Registered mixer blocks (closest first): " in message and "span_conv" in message
    installed = message.split("Installed plugin distributions: ")[1]
    assert "convbert-extra-mixers" in installed.split(" (not loaded: ")[1].split(";")[0]


def write_broken_distribution(root: Path) -> None:
    """An installed distribution whose `convbert` entry point raises on import."""
    info = root / "broken_convbert_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-convbert-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[convbert]\nbroken = broken_convbert_plugin\n")
    (root / "broken_convbert_plugin.py").write_text("raise RuntimeError('needs a CUDA build of its ops')\n")


def test_a_plugin_that_fails_to_import_is_named(tmp_path: Path, monkeypatch) -> None:
    write_broken_distribution(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    registry = Registry()
    registry.load_builtins()
    with pytest.raises(PluginError) as info:
        registry.load_entry_points()
    message = str(info.value)
    assert "'broken' (broken_convbert_plugin) of distribution 'broken-convbert-plugin'" in message
    assert "needs a CUDA build of its ops" in message and DISABLE_AUTOLOAD_ENV in message
    assert isinstance(info.value.__cause__, RuntimeError)


def test_autoload_can_be_switched_off(tmp_path: Path, monkeypatch, isolated_default_registry) -> None:
    write_broken_distribution(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "broken_convbert_plugin", raising=False)
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    registry = Registry.default()  # no PluginError: the broken entry point is never imported
    assert "broken_convbert_plugin" not in sys.modules
    assert "fourier" not in registry.names("mixer") and "span_conv" in registry.names("mixer")
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "0")
    reset_default_registry()
    with pytest.raises(PluginError, match="broken-convbert-plugin"):
        Registry.default()


def test_a_plugin_that_fails_while_registering_is_named(fresh_registry: Registry) -> None:
    class Faulty:
        @hookimpl
        def convbert_register_blocks(self, registry) -> None:
            raise KeyError("schema")

    with pytest.raises(PluginError, match=r"'faulty-plugin' failed while registering its blocks: KeyError"):
        fresh_registry.register_plugin(Faulty(), name="faulty-plugin")


REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("doc", "after", "block"), [("docs/blocks.md", "Writing a plugin", "mean_pool"),
                                                     ("README.md", "A plugin in 15 lines", "token_shift")])
def test_the_documented_plugin_examples_work(tmp_path: Path, monkeypatch, fresh_registry: Registry,
                                             doc: str, after: str, block: str) -> None:
    """The plugin examples of README and docs, run as written: registered via `plugins:`, contract kept,
    a ConvBERT with the block as its second mixer part trains."""
    text = (REPO / doc).read_text().split(after, 1)[1]
    module = text.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "my_mixers.py").write_text(module)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_mixers", raising=False)
    mixer = {"name": "mixed", "num_heads": 4, "head_ratio": 2,
             "parts": [{"name": "self_attention"}, {"name": block}]}
    model = build_model({**tiny(mixer), "plugins": ["my_mixers"]}, registry=fresh_registry)
    check_block(fresh_registry.get("mixer", block), fresh_registry)
    out = model(input_ids=torch.randint(1, 50, (2, 6)), labels=torch.tensor([0, 2]))
    out.loss.backward()
    assert torch.isfinite(out.loss) and fresh_registry.get("mixer", block).provider == "my_mixers"


def _installed() -> bool:
    try:
        metadata.distribution(PLUGIN_DIST)
    except metadata.PackageNotFoundError:
        return False
    return True


needs_installed_plugin = pytest.mark.skipif(not _installed(), reason=f"needs the plugin installed: {INSTALL}")
TOY_RUN = ["pretrain=none", "task=sentiment", "trainer.max_steps=2", "trainer.num_threads=1",
           "trainer.progress=false", "data.max_examples=16", "data.max_dev_examples=8", "data.max_length=32",
           "model.num_layers=1"]


def _train(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in __import__("os").environ.items() if k != DISABLE_AUTOLOAD_ENV}
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return subprocess.run([sys.executable, "-m", "convbert.train", *args], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=300)


@needs_installed_plugin
def test_an_installed_plugin_block_is_selected_on_the_command_line(tmp_path: Path) -> None:
    """pip install ./plugins/convbert-extra-mixers, then a 2-step run with its block: nothing in convbert/
    names it. The model file's alias the swapped-out block used (kernel_size) is no longer an error."""
    proc = _train(["mixer@model.layer.mixer.parts.conv=fourier", *TOY_RUN, "hydra.run.dir=run"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    from convbert import ConvBertForSequenceClassification

    model = ConvBertForSequenceClassification.from_pretrained(tmp_path / "run" / "model")
    parts = model.config.composition["layer"]["mixer"]["parts"]
    assert parts["conv"]["name"] == "fourier" and "kernel_size" not in parts["conv"]
    # ...but changing that alias now would change nothing: refused, as a misspelled key would be
    proc = _train(["mixer@model.layer.mixer.parts.conv=fourier", "model.kernel_size=5", *TOY_RUN,
                   "hydra.run.dir=run2"], tmp_path)
    assert proc.returncode == 2 and "model.kernel_size" in proc.stderr and "change nothing" in proc.stderr


@needs_installed_plugin
def test_the_entry_point_puts_the_plugins_config_dir_on_hydras_search_path() -> None:
    from convbert.train.cli import compose_config

    cfg = compose_config(["+mixer=fourier"])  # conf/mixer/fourier.yaml ships in the plugin, not in convbert
    assert cfg.mixer.name == "fourier" and "project" in cfg.mixer
    cfg = compose_config(["~model.layer.mixer", "+model.layer.mixer={name:linear_attention,num_heads:4}"])
    assert dict(cfg.model.layer.mixer) == {"name": "linear_attention", "num_heads": 4}


def test_the_search_path_override_joins_the_other_overrides(monkeypatch) -> None:
    """Hydra's parser takes the overrides as one run of words: the added one never lands after an option."""
    from convbert.train import cli

    class WithDirs:
        config_dirs = ("/plugins/a/conf", "/home/o'brien/conf")

    monkeypatch.setattr(Registry, "default", classmethod(lambda cls: WithDirs()))
    added = "hydra.searchpath=['file:///plugins/a/conf','file:///home/o\\'brien/conf']"
    assert cli.plugin_search_path(["--cfg", "job"]) == ["--cfg", "job", added]
    assert cli.plugin_search_path(["-m", "a=1", "b=2"]) == ["-m", added, "a=1", "b=2"]
    assert cli.plugin_search_path(["a=1", "--cfg", "job"]) == [added, "a=1", "--cfg", "job"]
    mine = cli.plugin_search_path(["hydra.searchpath=['file:///x,y',pkg://z]", "a=1"])
    assert mine[0].startswith("hydra.searchpath=['file:///x,y','pkg://z','file:///plugins/a/conf'")
    assert mine[1:] == ["a=1"]
    from hydra.core.override_parser.overrides_parser import OverridesParser

    value = OverridesParser.create().parse_override(added).value()
    assert value == ["file:///plugins/a/conf", "file:///home/o'brien/conf"]


@needs_installed_plugin
@pytest.mark.parametrize("args", [["--cfg", "job", "trainer.max_steps=2"],
                                  ["trainer.max_steps=2", "--cfg", "job"]])
def test_options_and_overrides_parse_with_a_plugin_installed(tmp_path: Path, args: list[str]) -> None:
    proc = _train(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "max_steps: 2" in proc.stdout


@needs_installed_plugin
def test_a_block_swap_through_the_python_api_checks_aliases_like_the_cli() -> None:
    from convbert.errors import ConfigError
    from convbert.train.cli import compose_config
    from convbert.train.job import encoder_composition

    composition, _ = encoder_composition(compose_config(["mixer@model.layer.mixer.parts.conv=fourier"]), None)
    assert composition["layer"]["mixer"]["parts"]["conv"]["name"] == "fourier"
    changed = compose_config(["mixer@model.layer.mixer.parts.conv=fourier", "model.kernel_size=5"])
    with pytest.raises(ConfigError, match=r"model\.kernel_size"):
        encoder_composition(changed, None)


def _readme_block_swaps() -> list[list[str]]:
    import shlex

    text = (REPO / "docs" / "blocks.md").read_text()
    block = text.split("**On the command line.**", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line.split("  #")[0])[1:] for line in block.splitlines()
            if line.startswith("convbert-train ")]


@needs_installed_plugin
def test_the_readme_block_swaps_run(tmp_path: Path) -> None:
    commands = _readme_block_swaps()
    assert len(commands) == 3
    for n, args in enumerate(commands):
        proc = _train([*args, *TOY_RUN, f"hydra.run.dir=run{n}"], tmp_path)
        assert proc.returncode == 0, f"{args}: {proc.stderr[-1500:]}"
