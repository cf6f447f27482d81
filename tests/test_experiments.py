"""The ablation sweeps in conf/experiment/ (docs/ablations.md): every experiment
composes, and for every value of every model parameter of its ``hydra.sweeper.params`` the model node becomes
a composition (the training code's own alias handling, ``model_composition``) that ``convbert.build_model``
builds. Built on the meta device: seconds.
"""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from convbert import build_model
from convbert.train import schema
from convbert.train.cli import CONF_DIR, prepare_overrides
from convbert.train.model_config import model_composition

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")  # not protocol/ or variants
                     # the released recipes (tests/test_train_scale.py) and the GLUE sweep, which varies the
                     # task, not the model (tests/test_glue.py runs it)
                     if not p.stem.startswith("pretrain_") and p.stem != "glue")
ABLATIONS = {"kernel_size", "head_ratio", "conv_variant", "grouped_ffn", "bert_vs_convbert"}


@pytest.fixture(scope="module")
def hydra_compose():
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        yield lambda overrides=(), **kw: compose("train", overrides=prepare_overrides(list(overrides)), **kw)
    GlobalHydra.instance().clear()


def sweep_params(hydra_compose, experiment: str) -> dict[str, list[str]]:
    cfg = hydra_compose([f"experiment={experiment}"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert params, f"experiment {experiment} defines the sweep it runs with -m"
    return {key: [value.strip() for value in str(values).split(",")] for key, values in params.items()}


def sweep(hydra_compose, experiment: str) -> list[tuple[str, str]]:
    """The (key, value) points of the sweep's model parameter(s); seeds are checked on their own."""
    params = sweep_params(hydra_compose, experiment)
    return [(key, value) for key, values in params.items() if key != "seed" for value in values]


def build(cfg):
    composition = model_composition(cfg.model)
    with torch.device("meta"):
        model = build_model(composition)
    return composition, model


def test_the_paper_ablations_are_shipped():
    assert set(EXPERIMENTS) >= ABLATIONS


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_sweep_value_builds(hydra_compose, experiment):
    points = sweep(hydra_compose, experiment)
    assert len(points) >= 2
    seen = set()
    for key, value in points:
        cfg = hydra_compose([f"experiment={experiment}", f"{key}={value}"])
        schema.check_run(cfg)
        composition, model = build(cfg)
        assert model.num_parameters() > 0
        seen.add(repr(composition))
    assert len(seen) == len(points), "every sweep value gives a different model"


def mixer(hydra_compose, *overrides):
    return build(hydra_compose(list(overrides)))[0]["layer"]["mixer"]


def test_expected_sweep_values(hydra_compose):
    def values(experiment):
        return [v for _, v in sweep(hydra_compose, experiment)]

    assert values("kernel_size") == ["3", "5", "9", "17", "33"]
    assert values("head_ratio") == ["1", "2", "4", "8"]
    assert values("grouped_ffn") == ["1", "2", "4"]
    assert values("conv_variant") == ["span_conv", "dynamic_conv", "lightweight_conv", "conv", "none"]


def test_conv_variant_replaces_the_conv_part(hydra_compose):
    for variant in ("span_conv", "dynamic_conv", "lightweight_conv", "conv"):
        node = mixer(hydra_compose, "experiment=conv_variant", f"+experiment/conv_variant={variant}")
        assert node["name"] == "mixed"
        assert {role: p["name"] for role, p in node["parts"].items()} == {"attention": "self_attention",
                                                                          "conv": variant}
        conv = node["parts"]["conv"]
        assert conv["kernel_size"] == 9 and conv["mask_padding"] is True  # the model's aliases reach it
        assert set(conv) == {"name", "kernel_size", "mask_padding"}  # nothing re-spelled: its own defaults
    node = mixer(hydra_compose, "experiment=conv_variant", "+experiment/conv_variant=none")
    assert node["name"] == "self_attention"


def test_head_ratio_uses_eight_heads(hydra_compose):
    for ratio in (1, 2, 4, 8):
        node = mixer(hydra_compose, "experiment=head_ratio", f"model.head_ratio={ratio}")
        assert node["num_heads"] == 8 and node["head_ratio"] == ratio and node["head_size_rule"] == "paper"
    sizes = [build(hydra_compose(["experiment=head_ratio", f"model.head_ratio={r}"]))[1].num_parameters()
             for r in (1, 2, 4, 8)]
    assert sizes == sorted(sizes, reverse=True)  # a larger ratio: fewer heads, a cheaper mixer


def test_grouped_ffn(hydra_compose):
    def ffn(groups):
        return build(hydra_compose(["experiment=grouped_ffn", f"model.num_groups={groups}"]))
    (c1, m1), (c2, m2), (_, m4) = ffn(1), ffn(2), ffn(4)
    assert c1["layer"]["ffn"]["name"] == "dense" and c2["layer"]["ffn"]["num_groups"] == 2
    assert m1.num_parameters() > m2.num_parameters() > m4.num_parameters()


@pytest.mark.parametrize("experiment", sorted(ABLATIONS))
def test_every_ablation_runs_the_measured_protocol(hydra_compose, experiment):
    """MLM pretraining (dev MLM loss, fixed dev masks) and two seeds per point: docs/ablations.md's tables."""
    assert sweep_params(hydra_compose, experiment)["seed"] == ["0", "1"]
    cfg = hydra_compose([f"experiment={experiment}"])
    assert cfg.task.name == "pretrain_mlm" and cfg.pretrain is None
    assert cfg.trainer.max_steps == 1200 and cfg.data.max_length == 64 and cfg.data.dev_fraction == 0.1
    _, stages = schema.check_run(cfg)
    assert [s.name for s in stages] == ["task"]
