"""The block registry: built-ins, plugins through the hook, and errors that say what to do."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import pytest
import torch
from torch import nn

import convbert
from convbert import hookimpl
from convbert.errors import ConfigError, DuplicateBlockError, PluginError, UnknownBlockError
from convbert.registry import DISABLE_AUTOLOAD_ENV, Registry, reset_default_registry
from convbert.testing import check_block

BUILTINS = {
    "embedding": {"bert"},
    "mixer": {"self_attention", "span_conv", "mixed"},
    "ffn": {"dense", "grouped"},
    "layer": {"transformer"},
    "head": {"masked_lm", "sequence_classification", "token_classification", "question_answering",
             "multiple_choice"},
}


def tiny_composition(mixer=None, head=None):
    comp = {
        "hidden_size": 16, "num_layers": 2,
        "embedding": {"name": "bert", "vocab_size": 30, "max_position_embeddings": 20},
        "layer": {"name": "transformer", "mixer": mixer or {"name": "self_attention", "num_heads": 2},
                  "ffn": {"name": "dense", "intermediate_size": 32}},
    }
    if head:
        comp["head"] = head
    return comp


@dataclass
class ReverseParams:
    scale: float = 1.0


class ReverseMixer(nn.Module):
    """A toy mixer: each token sees the linear map of its mirror token (padding-aware)."""

    def __init__(self, params: ReverseParams, ctx) -> None:
        super().__init__()
        self.proj = nn.Linear(ctx.hidden_size, ctx.hidden_size)
        self.scale = params.scale
        self.output_size = ctx.hidden_size

    def forward(self, hidden, mask, output_attentions=False, shared=None):
        return self.proj(hidden).flip(1) * self.scale, None


class ReversePlugin:
    @hookimpl
    def convbert_register_blocks(self, registry):
        registry.register("mixer", "reverse", ReverseMixer, ReverseParams)


def test_builtins_are_listed(fresh_registry):
    for kind, names in BUILTINS.items():
        assert names <= set(fresh_registry.names(kind)), kind
    spec = fresh_registry.get("mixer", "span_conv")
    assert spec.provider == "convbert.blocks.span_conv" and spec.distribution == "convbert"
    assert spec.defaults()["kernel_size"] == 9
    assert {s.name for s in convbert.list_blocks("ffn")} >= {"dense", "grouped"}


def test_plugin_registered_through_the_hook_builds_and_runs(fresh_registry):
    fresh_registry.register_plugin(ReversePlugin(), name="reverse-plugin")
    assert fresh_registry.get("mixer", "reverse").provider == "reverse-plugin"
    model = convbert.build_model(tiny_composition({"name": "reverse", "scale": 0.5}), registry=fresh_registry)
    out = model(torch.randint(0, 30, (2, 7))).last_hidden_state
    assert out.shape == (2, 7, 16) and torch.isfinite(out).all()


def test_same_plugin_object_twice_registers_once(fresh_registry):
    plugin = ReversePlugin()
    fresh_registry.register_plugin(plugin, name="p")
    fresh_registry.register_plugin(plugin, name="p")
    assert fresh_registry.names("mixer").count("reverse") == 1


def test_duplicate_name_names_both_providers(fresh_registry):
    class Clash:
        @hookimpl
        def convbert_register_blocks(self, registry):
            registry.register("mixer", "span_conv", ReverseMixer, ReverseParams)

    with pytest.raises(DuplicateBlockError) as err:
        fresh_registry.register_plugin(Clash(), name="clashing-plugin")
    assert "convbert.blocks.span_conv" in str(err.value) and "clashing-plugin" in str(err.value)


def test_unknown_name_lists_registered_closest_first(fresh_registry):
    with pytest.raises(UnknownBlockError) as err:
        convbert.build_model(tiny_composition({"name": "span_cnv"}), registry=fresh_registry)
    msg = str(err.value)
    assert "span_cnv" in msg and "model.layer.mixer" in msg
    listed = msg.split("closest first):")[1]
    assert listed.strip().startswith("span_conv")
    assert "self_attention" in listed and "mixed" in listed


def test_misspelled_key_lists_valid_keys(fresh_registry):
    bad = {"name": "mixed", "parts": [{"name": "self_attention"}, {"name": "span_conv", "kernal_size": 5}]}
    with pytest.raises(ConfigError) as err:
        convbert.build_model(tiny_composition(bad), registry=fresh_registry)
    msg = str(err.value)
    assert "model.layer.mixer.parts.1.kernal_size" in msg and "kernel_size" in msg and "Valid keys" in msg


def test_wrong_type_names_key_and_type(fresh_registry):
    bad = {"name": "span_conv", "num_heads": 2, "kernel_size": "wide", "shared_query": False}
    with pytest.raises(ConfigError) as err:
        convbert.build_model(tiny_composition(bad), registry=fresh_registry)
    assert "kernel_size" in str(err.value) and "int" in str(err.value)


def test_top_level_typo_lists_valid_keys(fresh_registry):
    comp = tiny_composition()
    comp["num_layer"] = comp.pop("num_layers")
    with pytest.raises(ConfigError, match="num_layers"):
        convbert.build_model(comp, registry=fresh_registry)


def test_plugin_module_that_fails_to_import_is_named(fresh_registry):
    with pytest.raises(PluginError, match="no_such_convbert_plugin"):
        fresh_registry.load_modules(["no_such_convbert_plugin"])
    broken = types.ModuleType("broken_convbert_plugin")
    sys.modules["broken_convbert_plugin"] = broken

    @hookimpl
    def convbert_register_blocks(registry):
        raise RuntimeError("boom")

    broken.convbert_register_blocks = convbert_register_blocks
    try:
        with pytest.raises(PluginError, match=r"broken_convbert_plugin.*boom"):
            fresh_registry.load_modules(["broken_convbert_plugin"])
    finally:
        del sys.modules["broken_convbert_plugin"]


class _FailingEntryPoint:
    name, value, group = "exploding", "exploding_pkg.plugin", "convbert"
    dist = types.SimpleNamespace(name="exploding-pkg")

    def load(self):
        raise ImportError("exploding_pkg needs a newer numpy")


def test_entry_point_that_fails_is_named_and_autoload_can_be_disabled(monkeypatch):
    from convbert import registry as registry_module

    monkeypatch.setattr(registry_module.metadata, "entry_points", lambda group: [_FailingEntryPoint()])
    reset_default_registry()
    try:
        monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
        with pytest.raises(PluginError) as err:
            Registry.default()
        assert "exploding-pkg" in str(err.value) and "newer numpy" in str(err.value)
        assert DISABLE_AUTOLOAD_ENV in str(err.value)
        reset_default_registry()
        monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
        assert "span_conv" in Registry.default().names("mixer")
    finally:
        reset_default_registry()


def test_plugins_listed_in_a_composition_are_loaded(fresh_registry):
    module = types.ModuleType("reverse_plugin_module")
    module.convbert_register_blocks = ReversePlugin().convbert_register_blocks
    sys.modules["reverse_plugin_module"] = module
    try:
        comp = tiny_composition({"name": "reverse"})
        comp["plugins"] = ["reverse_plugin_module"]
        model = convbert.build_model(comp, registry=fresh_registry)
        assert model.layers[0].mixer.block_name == "reverse"
    finally:
        del sys.modules["reverse_plugin_module"]


@pytest.mark.parametrize(
    "spec", Registry.default().list_blocks(), ids=lambda s: f"{s.kind}-{s.name}"
)
def test_every_registered_block_meets_its_contract(spec):
    check_block(spec, Registry.default())


def test_contract_suite_catches_a_mixer_that_ignores_padding(fresh_registry):
    from convbert.testing import ContractError

    class LeakyPlugin:
        @hookimpl
        def convbert_register_blocks(self, registry):
            registry.register("mixer", "leaky", ReverseMixer, ReverseParams)

    fresh_registry.register_plugin(LeakyPlugin(), name="leaky")
    with pytest.raises(ContractError, match="mask not respected"):
        check_block(fresh_registry.get("mixer", "leaky"), fresh_registry)


def test_bert_is_a_composition_of_the_same_registry():
    torch.manual_seed(0)
    comp = tiny_composition(
        {"name": "self_attention", "num_heads": 4}, head={"name": "masked_lm", "vocab_size": 30}
    )
    model = convbert.build_model(comp)
    assert isinstance(model, convbert.ConvBertForMaskedLM)
    assert not model.config.hf_compatible
    ids = torch.randint(1, 30, (2, 6))
    assert model(ids, labels=ids).loss.isfinite()
