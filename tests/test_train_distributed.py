"""The same entry point under torchrun: two CPU processes, DistributedDataParallel over gloo, one writer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from convbert.train.batching import BatchOrder

TOY = [
    "pretrain=none", "task=pretrain_rtd", "model.num_layers=1", "model.hidden_size=32", "model.num_heads=2",
       "model.intermediate_size=64", "model.embedding_size=16", "trainer.max_steps=3", "trainer.batch_size=4",
       "trainer.log_every=1", "trainer.save_every=2", "data.max_examples=16", "data.max_dev_examples=8",
       "data.max_length=32"]


def test_torchrun_two_processes_on_cpu(tmp_path):
    env = {**os.environ, "CONVBERT_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_WAIT_POLICY": "PASSIVE",
           "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "convbert.train", *TOY, "hydra.run.dir=run"]
    with subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env, start_new_session=True) as launcher:
        try:
            stdout, stderr = launcher.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, signal.SIGKILL)  # torchrun and both workers
            raise
    proc = subprocess.CompletedProcess(command, launcher.returncode, stdout, stderr)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = tmp_path / "run"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert proc.stdout.count("convbert-train finished") == 1, "process 0 alone prints and writes"
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"] == [1, 2, 3]
    checkpoint = run_dir / "checkpoints" / "task" / "step-000003"
    for rank in (0, 1):  # each process's own RNG state
        assert (checkpoint / f"rng-rank{rank}.safetensors").is_file()
    assert list(tmp_path.iterdir()) == [run_dir], "both processes wrote into one run directory"


def test_each_process_reads_its_own_share_of_every_batch():
    one = BatchOrder(20, batch_size=4, seed=1).epoch(0).tolist()
    shards = [BatchOrder(20, batch_size=2, seed=1, rank=r, world_size=2).epoch(0).tolist() for r in range(2)]
    for step, batch in enumerate(one):
        together = sorted(shards[0][step] + shards[1][step])
        assert together == sorted(batch) and not set(shards[0][step]) & set(shards[1][step])
