"""The training loop of one stage: AdamW, linear warm-up and decay, clipping, autocast, eval, checkpoints.

Everything random is seeded (model init, data order, masks, dropout), and a checkpoint holds every state the
next step depends on, so on the CPU a run stopped at step N and resumed logs the same losses as one that
never stopped.
"""

from __future__ import annotations

import contextlib
import math
import random
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from convbert.compilation import compile_in_place
from convbert.train.batching import BatchOrder, collate
from convbert.train.checkpoint import load_checkpoint, save_checkpoint
from convbert.train.distributed import Distributed, unwrap, wrap
from convbert.train.history import History
from convbert.train.schema import TrainerConfig
from convbert.train.tasks.base import Features, Task


class Diverged(Exception):
    """Raised instead of an update whose gradients are NaN or infinite (from a NaN or infinite loss): the
    weights stay those of the step before, and the stage ends there."""

    def __init__(self, step: int, loss: float) -> None:
        super().__init__(f"the training loss became {loss} at step {step}")


class Interrupted(Exception):
    """Raised after the checkpoint of ``trainer.stop_after`` (exit status 0) or of a Ctrl-C (130): the run
    stops as if it had been killed there, and ``resume=true`` continues exactly."""

    def __init__(self, step: int, checkpoint: Path | None, why: str = "trainer.stop_after",
                 exit_code: int = 0) -> None:
        super().__init__(f"stopped after step {step} ({why}); checkpoint {checkpoint}")
        self.step, self.checkpoint, self.exit_code = step, checkpoint, exit_code


@contextlib.contextmanager
def ctrl_c_stops_after_the_step(enabled: bool) -> Iterator[dict[str, bool]]:
    """While training, a first Ctrl-C (SIGINT) asks the loop to finish its step and write a checkpoint; a
    second one interrupts at once. Off in multi-process runs, where the processes would have to agree on
    the step (there a killed run resumes from its last periodic checkpoint), and where SIGINT is ignored
    (``nohup``, a background job): a run started that way keeps ignoring it, as Unix programs do."""
    asked = {"stop": False}
    if (not enabled or threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN):
        yield asked
        return

    def on_sigint(signum: int, frame: Any) -> None:
        asked["stop"] = True
        signal.signal(signal.SIGINT, previous)
        print("\nCtrl-C: finishing this step and writing a checkpoint (Ctrl-C again to stop without one)",
              file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield asked
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass
class StageRun:
    """Everything one stage's loop needs."""

    name: str
    task: Task
    module: torch.nn.Module  # on its device, weights initialised (or loaded from init_from)
    train: Features
    dev: Features
    trainer: TrainerConfig
    seed: int
    device: torch.device
    dist: Distributed
    history: History
    checkpoint_dir: Path
    resume_from: Path | None = None


def linear_schedule(warmup: int, total: int):
    """As Hugging Face's get_linear_schedule_with_warmup: 0 -> 1 over ``warmup`` steps, 0 at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def make_optimizer(module: torch.nn.Module, t: TrainerConfig) -> torch.optim.AdamW:
    """AdamW; biases and LayerNorm weights (the 1-D parameters) get no weight decay, as BERT."""
    params = {id(p): p for p in module.parameters() if p.requires_grad}.values()
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": t.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # the fused kernel (CPU and CUDA) is much faster than the per-tensor loop torch picks for CPU tensors
    return torch.optim.AdamW(groups, lr=t.learning_rate, betas=tuple(t.adam_betas), eps=t.adam_eps,
                             fused=True)


def autocast_for(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def total_steps(t: TrainerConfig, order: BatchOrder) -> int:
    return t.max_steps if t.max_steps is not None else max(1, math.ceil(t.epochs * order.steps_per_epoch))


def evaluate(run: StageRun, step: int, autocast) -> dict[str, float]:
    """Dev metrics on process 0 (the dev sets are small), shared with every process."""
    result: dict[str, float] = {}
    if run.dist.is_main and run.dev:
        module = unwrap(run.module)
        module.eval()
        result = run.task.evaluate(module, run.dev, run.trainer.eval_batch_size, run.device, autocast)
        run.history.append({"stage": run.name, "task": run.task.config.name, "step": step, "split": "dev",
                            **result})
    return run.dist.broadcast(result)


class LossWindow:
    """Sums of the training losses since the last log line; checkpointed, so the logs survive a resume."""

    def __init__(self, state: dict[str, float] | None = None) -> None:
        self.sums = dict(state or {})

    def add(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.sums["_count"] = self.sums.get("_count", 0.0) + 1

    def flush(self, dist: Distributed) -> dict[str, float]:
        """The means since the last flush (averaged over processes), and a fresh window."""
        count = self.sums.pop("_count")
        means = {k: dist.mean(v / count) for k, v in sorted(self.sums.items())}
        self.sums = {}
        return means


def optimizer_step(run: StageRun, model: torch.nn.Module, batch: dict[str, torch.Tensor],
                   rng: torch.Generator, optimizer: torch.optim.Optimizer, scheduler: Any,
                   autocast) -> tuple[dict[str, float], float]:
    """One update; returns the step's losses and the gradient norm before clipping."""
    model.train()
    with autocast:
        loss, logs = run.task.loss(model, batch, rng)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    max_norm = run.trainer.max_grad_norm if run.trainer.max_grad_norm > 0 else float("inf")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    if not torch.isfinite(grad_norm):  # the same on every process: DDP has averaged the gradients
        optimizer.zero_grad(set_to_none=True)
        raise Diverged(scheduler.last_epoch + 1, loss.detach().item())  # the scheduler counts the updates
    optimizer.step()
    scheduler.step()
    return {"loss": loss.detach().item(), **logs}, float(grad_norm)


def _length(ids: list) -> int:
    """Tokens of an example (of its longest choice, for multiple choice)."""
    return max(map(len, ids)) if ids and isinstance(ids[0], list) else len(ids)


def train(run: StageRun) -> dict[str, Any]:
    """Train one stage to ``max_steps``; returns its step count, speed, last training losses, dev metrics."""
    t, dist = run.trainer, run.dist
    lengths = [_length(f["input_ids"]) for f in run.train] if t.group_by_length else None
    order = BatchOrder(len(run.train), t.batch_size, run.seed, dist.rank, dist.world_size, lengths)
    max_steps = total_steps(t, order)
    warmup = t.warmup_steps if t.warmup_steps is not None else round(t.warmup_ratio * max_steps)
    optimizer = make_optimizer(run.module, t)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_schedule(warmup, max_steps))
    rng = torch.Generator(device=run.device).manual_seed(run.seed * 1000 + 17 + dist.rank)  # masks, samples
    torch.manual_seed(run.seed * 1000 + 29 + dist.rank)  # dropout
    random.seed(run.seed + dist.rank)
    state: dict[str, Any] = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "window": {}, "train_seconds": 0.0}
    if run.resume_from is not None:
        state = load_checkpoint(run.resume_from, module=run.module, optimizer=optimizer, scheduler=scheduler,
                                rng=rng, dist=dist)
    if t.compile:
        for part in run.task.compile_targets(run.module):
            compile_in_place(part)
    model = wrap(run.module, dist, run.device)
    autocast = autocast_for(t.precision, run.device)
    pad = run.task.tokenizer.pad_token_id
    step, epoch, position = state["step"], state["epoch"], state["batch_in_epoch"]
    window, last_train = LossWindow(state["window"]), dict(state.get("last_train", {}))
    train_seconds, checkpoint = state["train_seconds"], run.resume_from
    bar = tqdm(total=max_steps, initial=step, desc=f"{run.name}: {run.task.config.name}", unit="step",
               disable=not (dist.is_main and t.progress), dynamic_ncols=True)
    diverged = None
    with contextlib.ExitStack() as stack:
        stack.callback(bar.close)
        ctrl_c = stack.enter_context(ctrl_c_stops_after_the_step(not dist.enabled))
        while step < max_steps and diverged is None:
            batches = order.epoch(epoch)
            while position < len(batches) and step < max_steps:
                started = time.perf_counter()
                features = [run.train[i] for i in batches[position]]
                batch = {k: v.to(run.device) for k, v in collate(features, pad).items()}
                try:
                    losses, grad_norm = optimizer_step(run, model, batch, rng, optimizer, scheduler, autocast)
                except Diverged as error:
                    diverged = error
                    break
                step, position = step + 1, position + 1
                train_seconds += time.perf_counter() - started
                window.add(losses)
                bar.update(1)
                if step % t.log_every == 0 or step == max_steps:
                    last_train = window.flush(dist)
                    run.history.append({"stage": run.name, "task": run.task.config.name, "step": step,
                                        "split": "train", "epoch": epoch, "lr": scheduler.get_last_lr()[0],
                                        "grad_norm": grad_norm, **last_train})
                    bar.set_postfix(loss=f"{last_train['loss']:.4g}")
                if t.eval_every and step % t.eval_every == 0 and step < max_steps:
                    evaluate(run, step, autocast)
                stopping = ctrl_c["stop"] and step < max_steps
                if step % t.save_every == 0 or step == max_steps or step == t.stop_after or stopping:
                    at = (epoch + 1, 0) if position >= len(batches) else (epoch, position)  # the next batch
                    checkpoint = save_checkpoint(
                        run.checkpoint_dir, step, module=run.module, optimizer=optimizer, scheduler=scheduler,
                        rng=rng, dist=dist, keep=t.keep_checkpoints,
                        state={"epoch": at[0], "batch_in_epoch": at[1], "window": window.sums,
                               "last_train": last_train, "train_seconds": train_seconds})
                if stopping:
                    raise Interrupted(step, checkpoint, "Ctrl-C", exit_code=130)
                if step == t.stop_after and step < max_steps:
                    raise Interrupted(step, checkpoint)
            if position >= len(batches):
                epoch, position = epoch + 1, 0
    dev = evaluate(run, step, autocast)
    result = {"diverged": str(diverged)} if diverged else {}
    return {**result, "steps": step, "max_steps": max_steps, "epochs": round(step / order.steps_per_epoch, 3),
            "train_seconds": round(train_seconds, 3),
            "steps_per_second": round(step / max(train_seconds, 1e-9), 3),
            "train": last_train, "dev": dev, "checkpoint": str(checkpoint) if checkpoint else None}
