"""A task from a third-party package (plugins/convbert-sentiment-intensity) trains from the command line,
with no line of convbert/ naming it: discovery, schema, data, metric and saving all come from the plugin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch

from convbert import ConvBertForSequenceClassification
from convbert.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def _installed() -> bool:
    try:
        metadata.distribution("convbert-sentiment-intensity")
    except metadata.PackageNotFoundError:
        return False
    return True


INSTALL = "pip install ./plugins/convbert-sentiment-intensity"
pytestmark = pytest.mark.skipif(not _installed(), reason=f"needs the plugin: {INSTALL}")
TINY = ["trainer.max_steps=3", "trainer.num_threads=1", "trainer.progress=false", "data.max_examples=32",
        "data.max_dev_examples=16", "data.max_length=32", "model.num_layers=1"]


def _documented_command() -> list[str]:
    """The `convbert-train` line of docs/blocks.md's "Tasks are plugins too", as written."""
    import shlex

    text = (REPO / "docs" / "blocks.md").read_text().split("## Tasks are plugins too", 1)[1]
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    (line,) = [x for x in block.splitlines() if x.startswith("convbert-train ")]
    return shlex.split(line.split("#")[0])[1:]


RUN = [*_documented_command(), *TINY]


def _train(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CONVBERT_DISABLE_PLUGIN_AUTOLOAD"}
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return subprocess.run([sys.executable, "-m", "convbert.train", *args], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=600)


def test_no_core_module_names_the_plugin_task() -> None:
    for path in (REPO / "convbert").rglob("*"):
        if path.suffix in (".py", ".yaml"):
            assert "sentiment_intensity" not in path.read_text(encoding="utf-8"), path


def test_the_plugin_task_trains_evaluates_saves_and_reloads(tmp_path: Path) -> None:
    proc = _train([*RUN, "hydra.run.dir=run"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    stage = summary["stages"][-1]
    assert stage["task"] == "sentiment_intensity" and summary["metric"] == "pearson"
    assert {"pearson", "spearman", "mse"} <= set(stage["dev"])
    assert "mean_prediction_mse" in summary["baseline"]
    assert stage["model_class"] == "ConvBertForSequenceClassification"
    model = ConvBertForSequenceClassification.from_pretrained(tmp_path / "run" / "model")
    assert (model.config.num_labels, model.config.problem_type) == (1, "regression")
    ids = torch.tensor([[2, 1000, 2000, 3]])
    assert model(input_ids=ids).logits.shape == (1, 1)


def test_the_plugin_task_is_checked_like_a_built_in_one() -> None:
    from convbert.train.cli import compose_config
    from convbert.train.schema import check_run

    with pytest.raises(ConfigError, match=r"task.head.num_labels: a regression has one output"):
        check_run(compose_config([*RUN, "task.head.num_labels=3"]))
    with pytest.raises(ConfigError, match=r"task.scale: unknown key.*Valid keys of task: name, head"):
        check_run(compose_config([*RUN, "+task.scale=2"]))
    with pytest.raises(ConfigError, match=r"reads 'sentiment_intensity' data.*data=sentiment_intensity"):
        check_run(compose_config([*RUN, "data=sentiment"]))
