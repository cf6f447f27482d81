"""Sweeps through Hydra's launcher plugins: joblib (parallel local processes) and submitit's local executor.

Both plugins are dev dependencies (``pip install -e ".[dev]"`` or ``convbert[launchers]``); where one is not
installed its test is skipped with the install command. ``submitit_local`` is the same code path as the slurm
launcher except for the executor, so a passing local sweep is the offline check of cluster sweeps.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.test_train_sweep import TOY


def _needs(module: str, package: str):
    return pytest.mark.skipif(importlib.util.find_spec(module) is None,
                              reason=f"{package} is not installed: pip install {package}")


def _sweep(tmp_path, launcher: list[str]) -> subprocess.CompletedProcess:
    # plugins load as they do for users (CI installs convbert-extra-mixers): a plugin's config dir then joins
    # the command line, which must still parse with the launcher's options
    env = {k: v for k, v in os.environ.items() if k != "CONVBERT_DISABLE_PLUGIN_AUTOLOAD"}
    env.update(OMP_WAIT_POLICY="PASSIVE", TOKENIZERS_PARALLELISM="false")
    return subprocess.run([sys.executable, "-m", "convbert.train", "-m", *launcher, "model.kernel_size=3,5",
                           "trainer.num_threads=1", *TOY, "hydra.sweep.dir=sweep"],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)


def _check_runs_and_report(tmp_path, proc):
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    kernels = set()
    for job in ("0", "1"):
        summary = json.loads((tmp_path / "sweep" / job / "summary.json").read_text())
        assert summary["stages"][-1]["steps"] == 2
        kernels.add(next(o for o in summary["overrides"] if "kernel_size" in o).lstrip("+"))
        # each job's model really has its own kernel size
        config = json.loads((tmp_path / "sweep" / job / "model" / "config.json").read_text())
        assert f"model.kernel_size={config['conv_kernel_size']}" in kernels
    assert kernels == {"model.kernel_size=3", "model.kernel_size=5"}
    from convbert.train.report import report

    text = report(tmp_path / "sweep")
    assert "model.kernel_size=3" in text and "model.kernel_size=5" in text
    assert "++" not in text  # the launchers' "++key=value" spelling is shown as the user typed it


@_needs("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher")
def test_a_sweep_through_submitit_local(tmp_path):
    proc = _sweep(tmp_path, ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5"])
    _check_runs_and_report(tmp_path, proc)
    # submitit kept each job's log beside the sweep
    assert list((tmp_path / "sweep" / ".submitit").rglob("*_log.out"))


@_needs("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher")
def test_a_parallel_sweep_through_joblib(tmp_path):
    proc = _sweep(tmp_path, ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"])
    _check_runs_and_report(tmp_path, proc)


@_needs("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher")
def test_a_submitit_job_of_two_tasks_trains_as_one_distributed_run(tmp_path):
    """tasks_per_node=2: both tasks join one process group (as torchrun workers would) and share the batch."""
    env = {**os.environ, "CONVBERT_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_WAIT_POLICY": "PASSIVE",
           "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, "-m", "convbert.train", "-m", "hydra/launcher=submitit_local",
                           "hydra.launcher.tasks_per_node=2", "hydra.launcher.timeout_min=5",
                           "trainer.num_threads=1", *TOY, "hydra.sweep.dir=sweep"],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "sweep" / "0" / "summary.json").read_text())
    assert summary["world_size"] == 2
    lines = (tmp_path / "sweep" / "0" / "metrics.jsonl").read_text().splitlines()
    steps = [r["step"] for r in map(json.loads, lines) if r["split"] == "train"]
    assert steps == [1, 2], "one writer: each step logged once"


def _readme_launcher_commands() -> list[list[str]]:
    from pathlib import Path

    text = Path(__file__).resolve().parents[1].joinpath("docs", "training.md").read_text()
    block = text[text.index("## Parallel and cluster sweeps"):]
    block = block[block.index("```bash"):block.index("```\n", block.index("```bash") + 7)]
    commands = []
    for command in block.replace("\\\n", " ").splitlines():
        if command.startswith("convbert-train -m hydra/launcher="):
            words = command.split("#")[0].replace("<partition>", "gpu").split()[2:]  # drop convbert-train -m
            commands.append([w for w in words if not w.startswith(("model.kernel_size=", "experiment="))])
    return commands


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local", "submitit_slurm"])
def test_the_readme_launcher_commands_compose(launcher):
    """Every hydra.launcher.* key the README shows exists in that launcher's config (no cluster needed)."""
    commands = [c for c in _readme_launcher_commands() if c[0] == f"hydra/launcher={launcher}"]
    assert commands, f"docs/training.md shows no {launcher} command"
    if importlib.util.find_spec(f"hydra_plugins.hydra_{launcher.split('_')[0]}_launcher") is None:
        pytest.skip(f"hydra-{launcher.split('_')[0]}-launcher is not installed")
    env = {**os.environ, "CONVBERT_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    for words in commands:
        proc = subprocess.run([sys.executable, "-m", "convbert.train", *words, "--cfg", "hydra", "-p",
                               "hydra.launcher"], capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        for word in words:
            if word.startswith("hydra.launcher."):
                key, value = word.removeprefix("hydra.launcher.").split("=")
                assert f"{key}: {value}" in proc.stdout


@_needs("submitit", "submitit")
def test_a_submitit_task_keeps_the_variables_the_cluster_set():
    from unittest import mock

    from convbert.train.distributed import export_submitit_environment

    torchrun = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    task = {"SUBMITIT_EXECUTOR": "local", "SUBMITIT_LOCAL_JOB_ID": "123", "SUBMITIT_LOCAL_NTASKS": "2",
            "SUBMITIT_LOCAL_JOB_NUM_NODES": "1", "SUBMITIT_LOCAL_NODEID": "0", "SUBMITIT_LOCAL_GLOBALID": "1",
            "SUBMITIT_LOCAL_LOCALID": "1", "MASTER_PORT": "29511"}
    with mock.patch.dict(os.environ):  # the whole environment comes back as it was
        for key in torchrun:
            os.environ.pop(key, None)
        os.environ.update(task)
        assert export_submitit_environment()
        assert (os.environ["WORLD_SIZE"], os.environ["RANK"], os.environ["LOCAL_RANK"]) == ("2", "1", "1")
        assert os.environ["MASTER_PORT"] == "29511"
        for key in torchrun:
            os.environ.pop(key, None)
        os.environ["SUBMITIT_LOCAL_NTASKS"] = "1"
        assert not export_submitit_environment(), "one task: a plain single-process run"
        assert "WORLD_SIZE" not in os.environ
