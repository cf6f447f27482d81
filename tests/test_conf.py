"""The Hydra config tree: every option of every group composes, passes the schema checks and builds.

Composed with Hydra's compose API (``initialize_config_dir`` / ``compose``); GlobalHydra is cleared after
each test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from convbert import ConvBertConfig, build_model
from convbert.registry import Registry
from convbert.train import schema
from convbert.train.cli import CONF_DIR, prepare_overrides
from convbert.train.model_config import count_parameters, generator_composition, model_composition, with_head
from convbert.train.tasks import make_task
from convbert.train.tasks.base import training_registry

REPO = Path(__file__).resolve().parent.parent
BLOCK_GROUPS = ("embedding", "mixer", "ffn", "layer", "head")
TINY_DIMS = ["model.num_layers=1", "model.hidden_size=32", "model.num_heads=2", "model.intermediate_size=64",
             "model.embedding_size=16"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.fixture
def hydra_compose():
    """compose(overrides) on the shipped tree, as the CLI would (convbert's ``++`` rewriting included)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        yield lambda overrides=(), **kw: compose("train", overrides=prepare_overrides(list(overrides)), **kw)
    GlobalHydra.instance().clear()


def test_the_tree_ships_inside_the_package_and_the_top_level_conf_points_to_it():
    assert CONF_DIR == REPO / "convbert" / "conf"
    assert (CONF_DIR / "train.yaml").is_file()
    top = REPO / "conf"
    assert top.is_symlink() and top.resolve() == CONF_DIR.resolve()


def test_the_default_config_is_the_main_job(hydra_compose):
    cfg = hydra_compose()
    run, stages = schema.check_run(cfg)
    assert [(s.name, s.task.name, s.data.name) for s in stages] == [
        ("pretrain", "pretrain_rtd", "corpus"), ("task", "sequence_classification", "sentiment")]
    assert cfg.model.num_layers == 4 and run.seed == 0


@pytest.mark.parametrize("option", options("model"))
def test_every_model_composes_and_builds(hydra_compose, option):
    cfg = hydra_compose([f"model={option}"])
    composition = model_composition(cfg.model)
    assert count_parameters(composition) > 0  # built on the meta device: every block constructs
    if "tiny" in option:
        model = build_model(with_head(composition, {"name": "sequence_classification"}))
        ids = torch.randint(5, 100, (2, 9))
        assert model(ids, torch.ones_like(ids)).logits.shape == (2, 2)


@pytest.mark.parametrize(("option", "millions"), [
    ("convbert_small", 13.1), ("convbert_medium_small", 17.5), ("convbert_base", 105.7),
])
def test_released_sizes_have_the_released_parameter_counts(hydra_compose, option, millions):
    composition = model_composition(hydra_compose([f"model={option}"]).model)
    assert round(count_parameters(composition) / 1e6, 1) == millions
    config = ConvBertConfig.from_composition(composition)
    assert config.hf_compatible  # saved checkpoints load in transformers
    released = (config.num_hidden_layers, config.head_ratio, config.conv_kernel_size, config.vocab_size,
                config.max_position_embeddings, config.pad_token_id, config.hidden_act)
    assert released == (12, 2, 9, 30522, 512, 0, "gelu")


def test_bert_small_is_convbert_small_with_attention_only(hydra_compose):
    bert = model_composition(hydra_compose(["model=bert_small"]).model)
    conv = model_composition(hydra_compose(["model=convbert_small"]).model)
    assert bert["layer"]["mixer"] == {**bert["layer"]["mixer"], "name": "self_attention", "num_heads": 4}
    assert (bert["hidden_size"], bert["num_layers"]) == (conv["hidden_size"], conv["num_layers"])
    assert bert["layer"]["ffn"] == conv["layer"]["ffn"]


def test_aliases_are_one_short_override(hydra_compose):
    cfg = hydra_compose(["model=convbert_small", "model.kernel_size=5", "model.head_ratio=4",
                         "model.num_groups=2"])
    composition = model_composition(cfg.model)
    mixer = composition["layer"]["mixer"]
    assert mixer["parts"]["conv"]["kernel_size"] == 5 and mixer["head_ratio"] == 4
    assert composition["layer"]["ffn"]["name"] == "grouped" and composition["layer"]["ffn"]["num_groups"] == 2
    # the full path works too, and one group is the plain dense FFN (Hugging Face can describe it)
    cfg = hydra_compose(["model=convbert_small", "model.layer.mixer.parts.conv.kernel_size=17"])
    composition = model_composition(cfg.model)
    assert composition["layer"]["mixer"]["parts"]["conv"]["kernel_size"] == 17
    assert composition["layer"]["ffn"]["name"] == "dense"


@pytest.mark.parametrize("option", options("task"))
def test_every_task_composes_with_its_data_and_builds(hydra_compose, option):
    cfg = hydra_compose([f"task={option}", *TINY_DIMS])
    _, stages = schema.check_run(cfg)
    stage = stages[-1]
    assert stage.data.name == Registry.default().task(stage.task.name).task.data_name
    if stage.task.name in schema.pretraining_tasks():
        assert len(stages) == 1, "a pretraining task runs without a pretrain stage"
    training_registry()
    module = make_task(stage.task, tokenizer=_FakeTokenizer()).build(model_composition(cfg.model))
    assert sum(p.numel() for p in module.parameters()) > 0


@pytest.mark.parametrize("option", options("data"))
def test_every_data_option_is_read_by_a_task(hydra_compose, option):
    task = {"corpus": "pretrain_mlm", "qa": "question_answering", "glue": "glue/sst2"}.get(option, option)
    glue_files = [f"data.train_file={__file__}", f"data.dev_file={__file__}"]  # GLUE ships no data
    files = glue_files if option == "glue" else []
    cfg = hydra_compose([f"task={task}", f"data={option}", *files])
    assert schema.check_run(cfg)[1][-1].data.name == option


@pytest.mark.parametrize("option", options("trainer"))
def test_every_trainer_option_passes_the_schema(hydra_compose, option):
    cfg = hydra_compose([f"trainer={option}"])
    trainer = schema.check_trainer(cfg.trainer, "trainer")
    assert set(OmegaConf.to_container(cfg.trainer)) == set(schema.TrainerConfig.__dataclass_fields__), \
        "every trainer key is spelled out in the file (so --cfg job shows them all)"
    assert trainer.learning_rate > 0


@pytest.mark.parametrize("option", options("pretrain"))
def test_every_pretrain_option_composes(hydra_compose, option):
    _, stages = schema.check_run(hydra_compose([f"pretrain={option}"]))
    assert [s.name for s in stages] == (["task"] if option == "none" else ["pretrain", "task"])


@pytest.mark.parametrize("option", options("experiment"))
def test_every_experiment_composes_with_its_sweep(hydra_compose, option):
    cfg = hydra_compose([f"experiment={option}"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    if option.startswith("pretrain_"):  # a released pretraining recipe: one run (tests/test_train_scale.py)
        assert not params
        schema.check_run(hydra_compose([f"experiment={option}"]))
        return
    assert params, "an experiment defines the sweep it runs with -m"
    glue_files = [f"data.train_file={__file__}", f"data.dev_file={__file__}"]  # GLUE ships no data
    data = glue_files if option == "glue" else []
    for key, values in params.items():
        for value in str(values).split(","):
            schema.check_run(hydra_compose([f"experiment={option}", f"{key}={value.strip()}", *data]))


def test_rtd_generator_follows_the_paper(hydra_compose):
    for option, divisor, hidden in (("convbert_small", 4, 64), ("convbert_base", 3, 256)):
        composition = model_composition(hydra_compose([f"model={option}"]).model)
        generator = generator_composition(composition, divisor)
        assert generator["hidden_size"] == hidden and generator["num_layers"] == 12
        assert generator["embedding"]["embedding_size"] == (composition["embedding"]["embedding_size"])


# -- the block groups mirror the registry ------------------------------------------------------------------
def _registered(kind: str) -> dict[str, object]:
    registry = training_registry()
    return {s.name: s for s in registry.list_blocks(kind) if s.distribution == "convbert"}


@pytest.mark.parametrize("kind", BLOCK_GROUPS)
def test_every_builtin_block_has_a_file_naming_it_and_its_defaults_live_in_one_place(kind):
    """A block's file is its name (its defaults are its dataclass's alone); `mixed` also names its parts,
    which must be its dataclass's default parts."""
    specs = _registered(kind)
    assert set(options(kind)) == set(specs), f"conf/{kind}/ must hold one file per registered {kind} block"
    for name, spec in specs.items():
        node = OmegaConf.to_container(OmegaConf.load(CONF_DIR / kind / f"{name}.yaml"))
        defaults = node.pop("defaults", [])
        assert node == {"name": name}
        parts = {key.split("@parts.", 1)[1]: {"name": block}
                 for item in defaults if isinstance(item, dict) for key, block in item.items()}
        assert parts == (spec.defaults().get("parts") or {})


@pytest.mark.parametrize("name", options("ffn") + options("mixer"))
def test_every_mixer_and_ffn_file_builds_inside_a_model(hydra_compose, name):
    """Each file's node builds, completed by its block's registered ``example`` where the defaults alone
    cannot (a span conv sharing the query of an attention sibling it does not have): no block named here."""
    kind = "ffn" if (CONF_DIR / "ffn" / f"{name}.yaml").exists() else "mixer"
    node = OmegaConf.to_container(OmegaConf.load(CONF_DIR / kind / f"{name}.yaml"))
    node.pop("defaults", None)  # mixed's parts: its dataclass default, the same blocks
    node.update(training_registry().get(kind, name).example or {})
    if kind == "ffn":
        node["intermediate_size"] = 64
    else:
        node.update(num_heads=node.get("num_heads") or 2)
    composition = model_composition(hydra_compose(TINY_DIMS).model)
    composition["layer"][kind] = node
    model = build_model(composition)
    ids = torch.randint(5, 100, (2, 7))
    assert model(ids, torch.ones_like(ids)).last_hidden_state.shape == (2, 7, 32)


class _FakeTokenizer:
    pad_token_id, cls_token_id, sep_token_id, mask_token_id = 0, 2, 3, 4

    def __len__(self) -> int:
        return 8192
