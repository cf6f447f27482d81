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
