"""``convbert-blocks``: the listing (table, JSON, kind filter) and ``--check`` (the contract, every block)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from convbert.cli.blocks import main
from convbert.registry import reset_default_registry


@pytest.fixture(autouse=True)
def isolated_default_registry():
    """``--plugin`` adds to the process-wide registry: rebuild it around every test."""
    reset_default_registry()
    yield
    reset_default_registry()


def test_lists_every_block_with_kind_defaults_and_distribution(capsys) -> None:
    assert main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["kind", "name", "provided", "by", "parameters", "(defaults)"]
    rows = {line.split()[1]: line for line in lines[1:]}
    for name in ("bert", "self_attention", "span_conv", "dynamic_conv", "lightweight_conv", "conv", "mixed",
                 "dense", "grouped", "transformer", "masked_lm"):
        assert "convbert 0.1.0" in rows[name]
    assert rows["dynamic_conv"].split()[0] == "mixer"
    assert "kernel_size=9, mask_padding=false, weight_dropout=0.0" in rows["dynamic_conv"]


def test_json_filtered_by_kind(capsys) -> None:
    assert main(["--kind", "mixer", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert {row["kind"] for row in rows.values()} == {"mixer"}
    assert {"self_attention", "span_conv", "dynamic_conv", "lightweight_conv", "conv"} <= set(rows)
    conv = rows["conv"]
    assert (conv["distribution"], conv["provider"]) == ("convbert", "convbert.blocks.depthwise_conv")
    assert conv["params"] == {"num_heads": None, "head_size": None, "kernel_size": 9, "mask_padding": False}


def test_check_passes_on_every_installed_block(capsys) -> None:
    assert main(["--check"]) == 0
    out = capsys.readouterr().out
    assert "mixer/dynamic_conv" in out and out.rstrip().endswith("passed, 0 failed")


def test_check_fails_and_names_a_block_that_breaks_its_contract(tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "wrong_width_plugin.py").write_text(
        "from dataclasses import dataclass\n"
        "import torch\n"
        "from convbert import hookimpl\n\n"
        "@dataclass\nclass P:\n    pass\n\n"
        "class WrongWidth(torch.nn.Module):\n"
        "    output_size = 3\n"
        "    def __init__(self, params, ctx):\n"
        "        super().__init__()\n"
        "        self.proj = torch.nn.Linear(ctx.hidden_size, 4)\n"
        "    def forward(self, hidden, mask, output_attentions=False, shared=None):\n"
        "        return self.proj(hidden), None\n\n"
        "@hookimpl\n"
        "def convbert_register_blocks(registry):\n"
        "    registry.register('mixer', 'wrong_width', WrongWidth, P)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["--check", "--kind", "mixer", "--plugin", "wrong_width_plugin", "--json"]) == 1
    results = json.loads(capsys.readouterr().out)
    assert results["mixer/span_conv"] == "ok"
    assert "output shape (2, 7, 4), expected (2, 7, 3)" in results["mixer/wrong_width"]
    assert not any(key.startswith("head/") for key in results)


def test_a_plugin_that_cannot_load_exits_2_with_its_name(capsys) -> None:
    assert main(["--plugin", "no_such_convbert_plugin"]) == 2
    assert "plugin module 'no_such_convbert_plugin'" in capsys.readouterr().err


def test_console_script() -> None:
    script = shutil.which("convbert-blocks")
    command = [script] if script else [sys.executable, "-m", "convbert.cli.blocks"]
    done = subprocess.run([*command, "--kind", "ffn"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [line.split()[1] for line in done.stdout.splitlines()[1:]] == ["dense", "grouped"]


def test_lists_every_task_with_its_option_data_head_and_metric(capsys) -> None:
    assert main(["--kind", "task", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert {"sequence_classification", "token_classification", "question_answering", "multiple_choice",
            "pretrain_mlm", "pretrain_rtd"} <= set(rows)
    sentiment = rows["sequence_classification"]
    assert sentiment["option"] == "task=sentiment" and sentiment["data"] == "sentiment"
    assert (sentiment["head"], sentiment["metric"], sentiment["greater_is_better"]) == (
        "sequence_classification", "accuracy", True)
    assert {"train_file", "dev_file", "max_length", "labels"} <= set(sentiment["data_options"])
    assert sentiment["record_fields"] == ["text", "label"]
    assert main(["--kind", "task"]) == 0
    text = capsys.readouterr().out
    assert "sequence_classification  (task=sentiment; provided by convbert 0.1.0)" in text
    assert "head: sequence_classification; metric: accuracy (higher is better); records: text, label;" in text
    assert main(["--kind", "task", "--check"]) == 2


def test_a_regressions_chance_level_is_named_as_such() -> None:
    from convbert.registry import Registry
    from convbert.train.job import learning_verdict

    classification = Registry.default().task("sequence_classification").task
    verdict = learning_verdict({"train": {"loss": 0.6925}}, 0.6931, classification.chance_level)
    expected = "not below the chance level 0.6931 (the entropy of the training labels) by the 2%"
    assert expected in verdict["reason"]
    intensity = Registry.default().tasks.get("sentiment_intensity")
    if intensity is not None:  # the plugin, when installed
        verdict = learning_verdict({"train": {"loss": 3.0}}, 2.9, intensity.task.chance_level)
        assert "(a regression's chance level: the variance of the training scores" in verdict["reason"]
