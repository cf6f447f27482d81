"""Multi-process training on PyTorch's own engine: torchrun + DistributedDataParallel.

``torchrun --nproc_per_node=N -m convbert.train ...`` starts N copies of the same entry point; each joins the
process group (gloo for CPU tensors, NCCL for CUDA ones), trains on its share of every batch, and
DistributedDataParallel averages the gradients. Process 0 alone writes files and prints progress.
Without torchrun (no WORLD_SIZE in the environment) everything here is a no-op for one process.

A job that submitit starts as several tasks (``hydra/launcher=submitit_slurm`` or ``submitit_local`` with
``hydra.launcher.tasks_per_node=N``) gets the same variables from submitit's job environment, so each task
joins the process group as a torchrun worker would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as torch_dist
from torch import nn


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.enabled:
            torch_dist.barrier()

    def mean(self, value: float) -> float:
        """The mean of ``value`` over the processes (for logging)."""
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        torch_dist.all_reduce(t)
        return float(t) / self.world_size

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """The element-wise sum of a CPU tensor over the processes (e.g. a global batch's token counts)."""
        if not self.enabled:
            return values
        total = values.clone()
        torch_dist.all_reduce(total)
        return total

    def broadcast(self, obj: Any) -> Any:
        """Process 0's ``obj`` on every process."""
        if not self.enabled:
            return obj
        box = [obj]
        torch_dist.broadcast_object_list(box, src=0)
        return box[0]


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def export_submitit_environment() -> bool:
    """In a submitit job of several tasks, set torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*)
    from submitit's job environment; True when it did. Every GPU stays visible: the device is picked by
    LOCAL_RANK, as under torchrun."""
    if "WORLD_SIZE" in os.environ or not os.environ.get("SUBMITIT_EXECUTOR"):
        return False
    from submitit import JobEnvironment
    from submitit.helpers import TorchDistributedEnvironment

    if JobEnvironment().num_tasks <= 1:
        return False
    env = TorchDistributedEnvironment()  # reads a MASTER_PORT the cluster set, else derives one from the job
    wanted = {"MASTER_ADDR": env.master_addr, "MASTER_PORT": env.master_port, "RANK": env.rank,
              "WORLD_SIZE": env.world_size, "LOCAL_RANK": env.local_rank,
              "LOCAL_WORLD_SIZE": env.local_world_size}
    for key, value in wanted.items():  # what the cluster already set (a MASTER_PORT, say) is kept
        os.environ.setdefault(key, str(value))
    return True


def init_distributed(timeout_minutes: float = 30.0) -> Distributed:
    """Join the process group torchrun (or a multi-task submitit job) describes (idempotent); one process
    otherwise."""
    export_submitit_environment()
    if not launched_by_torchrun():
        return Distributed()
    if not torch_dist.is_initialized():
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        torch_dist.init_process_group(backend=backend, timeout=timedelta(minutes=timeout_minutes))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    return Distributed(torch_dist.get_rank(), torch_dist.get_world_size(), local_rank)


def pick_device(setting: str, dist: Distributed) -> torch.device:
    """``auto``: this process's GPU when there is one, else the CPU."""
    if setting == "auto":
        setting = "cuda" if torch.cuda.is_available() else "cpu"
    if setting == "cuda" and dist.enabled:
        setting = f"cuda:{dist.local_rank}"
    device = torch.device(setting)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            from convbert.errors import ConfigError

            raise ConfigError(f"trainer.device={setting}: no CUDA device here; use trainer.device=cpu")
        torch.cuda.set_device(device)
    return device


def wrap(module: nn.Module, dist: Distributed, device: torch.device) -> nn.Module:
    """DistributedDataParallel around ``module`` under torchrun; the module itself otherwise."""
    if not dist.enabled:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module
