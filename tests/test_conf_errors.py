"""Bad overrides are refused before anything is built, and the message names the key and the fix."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from convbert.errors import ConfigError
from convbert.train import schema
from convbert.train.cli import compose_config, prepare_overrides
from convbert.train.model_config import model_composition
from convbert.train.tasks import make_task
from convbert.train.tasks.base import training_registry


def check(overrides: list[str]) -> None:
    """What a run checks first: the schema of every stage, the model composition, the task heads."""
    cfg = compose_config(overrides)
    _, stages = schema.check_run(cfg)
    composition = model_composition(cfg.model)
    training_registry()
    for stage in stages:
        make_task(stage.task, tokenizer=None, path=f"{stage.path}task").check(composition)


@pytest.mark.parametrize(("override", "expected"), [
    ("trainer.lerning_rate=1e-3", ["trainer.lerning_rate: unknown key", "Did you mean 'learning_rate'?",
                                    "Valid keys of trainer: max_steps, epochs, batch_size"]),
    ("trainer.batch_size=many", ["trainer.batch_size", "expected int"]),
    ("trainer.precision=fp8", ["trainer.precision", "fp32, bf16, fp16"]),
    ("trainer.precision=fp16", ["trainer.precision", "fp16 needs a CUDA device", "bf16"]),
    ("pretrain.trainer.max_stpes=5", ["pretrain.trainer.max_stpes: unknown key",
                                      "Did you mean 'max_steps'?"]),
    ("data.max_exampels=10", ["data.max_exampels: unknown key", "Did you mean 'max_examples'?"]),
    ("data.train_split=trian", ["data.train_split", "'trian'", "train, dev, test"]),
    ("pretrain.data.sources=[wikipedia,imdb]", ["pretrain.data.sources", "imdb", "wikipedia, lee, pydoc"]),
    ("task.head.num_lables=3", ["task.head.num_lables: unknown key for head block 'sequence_classification'",
                                "Did you mean 'num_labels'?"]),
    ("task.name=sequence_clasification", ["task.name: unknown task",
                                          "Did you mean 'sequence_classification'?"]),
    ("pretrain.task.sampling=top_k", ["pretrain.task.sampling", "inverse_cdf, gumbel, multinomial"]),
    ("model.kernal_size=5", ["model.kernal_size: unknown key", "Did you mean 'kernel_size'?", "aliases"]),
    ("model.layer.mixer.parts.conv.kernal_size=5", [
        "model.layer.mixer.parts.conv.kernal_size: unknown key for mixer block 'span_conv'",
        "Did you mean 'kernel_size'?", "Valid keys"]),
    ("mixer@model.layer.mixer.parts.conv=span_con", ["mixer@model.layer.mixer.parts.conv", "span_con"]),
    ("model.layer.mixer.parts.conv.name=span_con", [
        "unknown mixer block 'span_con' at model.layer.mixer.parts.conv",
        "Registered mixer blocks (closest first): span_conv"]),
    ("model.kernel_size=big", ["model.layer.mixer.parts.conv.kernel_size", "expected int"]),
    ("model.layer.ffn.name=dens", ["unknown ffn block 'dens'", "dense"]),
])
def test_bad_override_names_the_key_and_the_fix(override, expected):
    with pytest.raises(ConfigError) as info:
        check([override])
    message = str(info.value)
    for part in expected:
        assert part in message, f"{part!r} not in: {message}"


def test_an_alias_the_model_does_not_use_is_refused():
    with pytest.raises(ConfigError, match=r"model.kernel_size: unknown key.*would change nothing"):
        check(["model=bert_tiny", "model.kernel_size=5"])


def test_a_task_on_the_wrong_data_says_which_data_to_select():
    with pytest.raises(ConfigError, match=r"task 'token_classification' .* reads 'token_classification' "
                                          r"data .* data=token_classification"):
        check(["task=token_classification", "data=sentiment"])


def test_pretraining_twice_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match="add pretrain=none"):
        check(["task=pretrain_mlm", "pretrain=rtd"])


def test_an_unknown_top_level_key_is_refused_before_hydra_runs():
    with pytest.raises(ConfigError, match=r"sed: unknown key. Did you mean 'seed'\?"):
        prepare_overrides(["sed=3"])
    given = ["seed=3", "model=bert_tiny", "trainer.max_steps=2", "+x.y=1", "hydra.run.dir=d"]
    assert prepare_overrides(given) == ["seed=3", "model=bert_tiny", "++trainer.max_steps=2", "+x.y=1",
                                        "hydra.run.dir=d"]


def test_the_cli_prints_the_message_without_a_traceback(tmp_path):
    env = {**os.environ, "CONVBERT_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.run([sys.executable, "-m", "convbert.train", "trainer.lerning_rate=1e-3",
                           f"hydra.run.dir={tmp_path}"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    expected = "convbert-train: error: trainer.lerning_rate: unknown key. Did you mean 'learning_rate'?"
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_pre_role_list_of_parts_is_answered_with_the_role_keys() -> None:
    from convbert.train.cli import prepare_overrides

    with pytest.raises(ConfigError, match=r"keyed by role \(attention, conv\), not a list.*"
                                          r"mixer@model.layer.mixer.parts.conv=dynamic_conv"):
        prepare_overrides(["model.layer.mixer.parts=[self_attention,span_conv]"])
