"""Snippets of README.md and docs/ that a new user copies, run as written (on tiny stand-ins for the
checkpoints they name). More of them run in test_plugins.py, test_plugin_task.py and test_plugin_head.py."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from conftest import tiny_config_kwargs

REPO = Path(__file__).resolve().parent.parent


def _block(doc: str, after: str, language: str = "python") -> str:
    text = (REPO / doc).read_text(encoding="utf-8").split(after, 1)[1]
    return text.split(f"```{language}\n", 1)[1].split("```", 1)[0]


def test_the_deploy_export_snippet_runs_as_written(tmp_path: Path, monkeypatch) -> None:
    """docs/deploy.md's export example defines everything it uses (model, tokenizer, inputs)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import convbert

    code = _block("docs/deploy.md", "## Export to ONNX and torch.export")
    model = convbert.ConvBertForMultipleChoice(convbert.ConvBertConfig(
        **tiny_config_kwargs(vocab_size=30522, max_position_embeddings=64)))
    model.save_pretrained(tmp_path / "checkpoints" / "mc")
    convbert.ConvBertTokenizerFast().save_pretrained(tmp_path / "checkpoints" / "mc")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "docs/deploy.md", "exec"), namespace)
    assert namespace["logits"].shape == (1, 2)
    assert (tmp_path / "exported" / "mc" / "model.onnx").is_file()


def test_the_download_command_is_the_installed_hubs() -> None:
    """docs/training.md's download line names the command huggingface_hub installs (`hf` since 1.0)."""
    text = (REPO / "docs" / "training.md").read_text(encoding="utf-8")
    commands = re.findall(r"`(\S+) download YituTech", text)
    assert commands == ["hf"]
    scripts = {ep.name for ep in metadata.distribution("huggingface_hub").entry_points
               if ep.group == "console_scripts"}
    assert "hf" in scripts, scripts


def test_the_predict_input_formats_are_documented() -> None:
    """docs/deploy.md says what a line of convbert-predict's input is for each kind of task."""
    text = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    for form in ('{"text": "A fine film."}', '{"text": ..., "text_pair": ...}',
                 '{"question": ..., "context": ...}', "plain text, one input per line"):
        assert form in text, form


def test_the_readme_plugin_installed_with_its_entry_point_is_selected_by_its_slot(tmp_path: Path) -> None:
    """README's 15-line plugin, installed with only its entry point (no config files), is selected as the
    README says: `convbert-train mixer@model.layer.mixer.parts.conv=token_shift`. Blocks without a
    `<kind>/<name>.yaml` get a generated one (`name: <name>`) on Hydra's search path."""
    import json
    import os
    import shlex
    import subprocess
    import sys

    site = tmp_path / "site"
    (site / "token_shift_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "token_shift_plugin.py").write_text(_block("README.md", "## A plugin in 15 lines"))
    (site / "token_shift_plugin-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: token-shift-plugin\nVersion: 0.1\n")
    (site / "token_shift_plugin-0.1.dist-info" / "entry_points.txt").write_text(
        "[convbert]\ntoken_shift = token_shift_plugin\n")
    text = (REPO / "README.md").read_text(encoding="utf-8").split("## A plugin in 15 lines", 1)[1]
    (command,) = re.findall(r"`(convbert-train mixer@[^`]*token_shift)`", text)
    env = {k: v for k, v in os.environ.items() if k != "CONVBERT_DISABLE_PLUGIN_AUTOLOAD"}
    env.update(PYTHONPATH=os.pathsep.join([str(site), env.get("PYTHONPATH", "")]), OMP_WAIT_POLICY="PASSIVE",
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    short = ["pretrain=none", "trainer.max_steps=2", "trainer.num_threads=1", "trainer.progress=false",
             "data.max_examples=16", "data.max_dev_examples=8", "data.max_length=32", "model.num_layers=1",
             "hydra.run.dir=run"]
    proc = subprocess.run([sys.executable, "-m", "convbert.train", *shlex.split(command)[1:], *short],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["composition"]["layer"]["mixer"]["parts"]["conv"] == {"name": "token_shift"}
    (generated,) = (tmp_path / "cache" / "convbert" / "block-options").glob("*/mixer/token_shift.yaml")
    assert "name: token_shift" in generated.read_text()


def test_the_readme_model_snippet_runs_on_a_run_directory(tmp_path: Path, monkeypatch) -> None:
    """README's first Python block, on a directory shaped as `convbert-train` leaves `outputs/<run>/model`."""
    import convbert

    code = _block("README.md", "## The models").replace("<run>", "run")
    directory = tmp_path / "outputs" / "run" / "model"
    convbert.ConvBertForSequenceClassification(convbert.ConvBertConfig(
        **tiny_config_kwargs(vocab_size=30522))).save_pretrained(directory)
    convbert.ConvBertTokenizerFast().save_pretrained(directory)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["out"].logits.shape == (2, 2) and (tmp_path / "out" / "model.safetensors").is_file()


def test_the_readme_composition_snippet_builds_bert(tmp_path: Path) -> None:
    code = _block("README.md", "## Swapping a block")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    model = namespace["model"]
    assert type(model).__name__ == "ConvBertForMaskedLM"
    assert type(model.convbert.layers[0].mixer).__name__ == "SelfAttention"


def test_the_from_python_snippet_trains(tmp_path: Path, monkeypatch) -> None:
    """docs/training.md's compose-and-run block, with 100 steps cut to 2."""
    code = _block("docs/training.md", "## From Python")
    code = code.replace("trainer.max_steps=100", "trainer.max_steps=2")
    assert "trainer.max_steps=2" in code
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "docs/training.md", "exec"), namespace)
    assert namespace["dev_loss"] > 0 and (tmp_path / "runs" / "mlm").is_dir()
