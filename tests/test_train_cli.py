"""The command line: the main job's two stages at toy size, through ``python -m convbert.train``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from convbert import ConvBertForSequenceClassification, ConvBertModel

TOY = ["model.num_layers=1", "model.hidden_size=32", "model.num_heads=2", "model.intermediate_size=64",
       "model.embedding_size=16",
       "pretrain.trainer.max_steps=3", "pretrain.trainer.batch_size=8", "pretrain.data.max_examples=24",
       "pretrain.data.max_dev_examples=8", "pretrain.data.max_length=32",
       "trainer.max_steps=4", "trainer.batch_size=8", "data.max_examples=32", "data.max_dev_examples=32"]


def cli(args: list[str], cwd: Path, module: str = "convbert.train") -> subprocess.CompletedProcess:
    # without OMP_WAIT_POLICY, as a user runs it: the entry point restarts itself with passive OpenMP waiting
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update(CONVBERT_DISABLE_PLUGIN_AUTOLOAD="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_the_main_job_pretrains_then_fine_tunes_and_writes_its_run_directory(tmp_path):
    proc = cli([*TOY, "hydra.run.dir=run"], tmp_path)
    run_dir = tmp_path / "run"
    for name in ("config.yaml", "metrics.jsonl", "loss.png", "summary.json", ".hydra/config.yaml",
                 "train.log"):
        assert (run_dir / name).is_file(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [(s["stage"], s["task"]) for s in summary["stages"]] == [
        ("pretrain", "pretrain_rtd"), ("task", "sequence_classification")]
    assert summary["tokenizer"].startswith("corpus (8192")
    # the dev accuracy is printed beside the majority-class baseline, then the verdict if it did not learn
    lines = proc.stdout.strip().splitlines()
    result = next(line for line in reversed(lines) if line.startswith("dev accuracy: "))
    assert "majority_accuracy" in result
    assert ("NOT LEARNED" in proc.stdout) is (summary["learned"] is False)
    assert "discriminator_prior_entropy" in proc.stdout and "unigram_loss" in proc.stdout
    assert "pretrain: pretrain_rtd" in proc.stderr  # tqdm progress bars
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {r["stage"] for r in records} == {"pretrain", "task"}
    assert isinstance(ConvBertModel.from_pretrained(run_dir / "pretrain" / "model"), ConvBertModel)
    model = ConvBertForSequenceClassification.from_pretrained(run_dir / "model")
    assert model.config.id2label == {0: "negative", 1: "positive"}


def test_python_dash_m_and_the_console_script_share_the_entry_point():
    from convbert.train import __main__
    from convbert.train import cli as cli_module

    assert __main__.main is cli_module.main


def test_the_readme_command_line_examples_train(tmp_path):
    """Every single-run `convbert-train` line of README's "Swapping a block", as written, on a tiny budget."""
    import shlex

    from convbert.train.cli import compose_config
    from convbert.train.job import run

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("## Swapping a block", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [shlex.split(line.split("#")[0])[1:] for line in block.splitlines()
                if line.startswith("convbert-train ") and " -m " not in line]
    assert len(commands) == 2
    tiny = ["pretrain=none", "trainer.max_steps=1", "data.max_examples=8", "data.max_dev_examples=8",
            "trainer.progress=false"]
    for n, args in enumerate(commands):
        assert run(compose_config([*args, *tiny]), tmp_path / str(n)) is not None, args
