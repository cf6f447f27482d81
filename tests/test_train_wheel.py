"""A non-editable install of the wheel runs a short job: the configs and data ship inside the package."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ENVIRONMENTAL = ("No module named", "BackendUnavailable", "Could not find a version", "network",
                 "Temporary failure", "externally-managed")
TOY = [
    "pretrain=none", "task=pretrain_mlm", "model.num_layers=1", "model.hidden_size=32", "model.num_heads=2",
       "model.intermediate_size=64", "model.embedding_size=16", "trainer.max_steps=2", "trainer.batch_size=4",
       "data.max_examples=8", "data.max_dev_examples=4", "data.max_length=32", "trainer.progress=false"]


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)


def see_our_dependencies(python: Path) -> None:
    """Let the new venv import the dependencies this interpreter has, but not its convbert.

    ``venv --system-site-packages`` would not do: made from a venv's python it exposes the *base*
    interpreter's site-packages, not the venv's, where README's Quick start installed everything. Plain path
    lines in a ``.pth`` come after the new venv's own site-packages and run no ``.pth`` of theirs, so the
    editable install of the checkout stays invisible and the wheel is what imports.
    """
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    assert purelib.returncode == 0, purelib.stderr
    ours = [*site.getsitepackages(), *([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])]
    target = Path(purelib.stdout.strip())
    target.mkdir(parents=True, exist_ok=True)
    (target / "outer_dependencies.pth").write_text("".join(f"{p}\n" for p in ours if Path(p).is_dir()))


def test_an_installed_wheel_runs_a_short_job(tmp_path):
    source = tmp_path / "source"  # build from a copy: setuptools leaves build/ in the tree it builds
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".*cache", "outputs", "multirun"))
    wheels = tmp_path / "wheels"
    build = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                  "-w", str(wheels), str(source)])
    if build.returncode != 0:
        if any(marker in build.stderr for marker in ENVIRONMENTAL):
            pytest.skip(f"cannot build a wheel here: {build.stderr.strip().splitlines()[-1]}")
        pytest.fail(build.stdout + build.stderr)
    wheel = next(wheels.glob("convbert-*.whl"))

    venv = tmp_path / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    if made.returncode != 0:
        pytest.skip(f"cannot create a virtual environment: {made.stderr.strip()}")
    python = venv / "bin" / "python"
    see_our_dependencies(python)
    install = _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                    "--no-index", "-q", str(wheel)])
    assert install.returncode == 0, install.stderr

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "CONVBERT_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_WAIT_POLICY": "PASSIVE",
           "TOKENIZERS_PARALLELISM": "false"}
    where = _run([str(python), "-c", "import convbert.train.cli as c; print(c.CONF_DIR)"], cwd=work, env=env)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(venv), "the installed copy, not the checkout"
    job = _run([str(venv / "bin" / "convbert-train"), *TOY, "hydra.run.dir=run"], cwd=work, env=env)
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    summary = json.loads((work / "run" / "summary.json").read_text())
    assert summary["stages"][0]["steps"] == 2
