"""The training loop of one stage: AdamW, linear warm-up and decay, clipping, autocast, eval, checkpoints.

Everything random is seeded (model init, data order, masks, dropout), and a checkpoint holds every state the
next step depends on, so on the CPU a run stopped at step N and resumed logs the same losses as one that
never stopped.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import re
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
from convbert.train.tasks.base import Features, StepContext, Task


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


def layer_depth(name: str, num_layers: int) -> int:
    """A parameter's depth as ELECTRA's ``_get_layer_lrs`` counts it: embeddings 0, encoder layer i at i + 1,
    the task head at num_layers + 2 (the encoder's parts above its layers, a final norm, at num_layers)."""
    found = re.search(r"(?:^|\.)layers\.(\d+)\.", name)
    if found:
        return int(found.group(1)) + 1
    if ".embeddings." in f".{name}":
        return 0
    if name.startswith("convbert.") or ".convbert." in name:
        return num_layers
    return num_layers + 2


def make_optimizer(module: torch.nn.Module, t: TrainerConfig) -> torch.optim.AdamW:
    """AdamW; biases and LayerNorm weights (the 1-D parameters) get no weight decay, as BERT. With
    ``layerwise_lr_decay`` (ELECTRA's and ConvBERT's fine-tuning: 0.8), a parameter at depth d of an n-layer
    encoder learns at lr x decay^(n + 2 - d): the head at lr, the top layer at lr x decay^2, the embeddings
    at lr x decay^(n + 2)."""
    named = {id(p): (n, p) for n, p in module.named_parameters() if p.requires_grad}.values()
    layers = [int(m.group(1)) for n, _ in named if (m := re.search(r"(?:^|\.)layers\.(\d+)\.", n))]
    num_layers = max(layers, default=-1) + 1
    grouped: dict[tuple[bool, float], list[torch.nn.Parameter]] = {}
    for name, p in named:
        scale = 1.0 if t.layerwise_lr_decay is None else \
            t.layerwise_lr_decay ** (num_layers + 2 - layer_depth(name, num_layers))
        grouped.setdefault((p.dim() >= 2, scale), []).append(p)
    groups = [{"params": params, "weight_decay": t.weight_decay if decays else 0.0,
               "lr": t.learning_rate * scale}
              for (decays, scale), params in sorted(grouped.items(),
                                                    key=lambda kv: (not kv[0][0], -kv[0][1]))]
    # the fused kernel (CPU and CUDA) is much faster than the per-tensor loop torch picks for CPU tensors
    return torch.optim.AdamW(groups, lr=t.learning_rate, betas=tuple(t.adam_betas), eps=t.adam_eps,
                             fused=True)


def autocast_for(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if precision == "fp16":
        return torch.autocast(device_type=device.type, dtype=torch.float16)
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


def optimizer_step(run: StageRun, model: torch.nn.Module, micro: list[dict[str, torch.Tensor]],
                   rng: torch.Generator, optimizer: torch.optim.Optimizer, scheduler: Any, autocast,
                   scaler: Any = None) -> tuple[dict[str, float], float]:
    """One update from the micro-batches of this process (``grad_accum_steps`` of them); returns the step's
    losses and the gradient norm before clipping.

    Each micro-batch's loss is scaled by its share of the global batch's counts (``Task.scaled_loss``), so
    the update is that of one batch of batch_size x grad_accum_steps x processes. Gradients are synchronised
    between processes on the last micro-batch only (``no_sync`` before it)."""
    model.train()
    dist = run.dist
    counts = [torch.stack([torch.as_tensor(c, dtype=torch.float64) for c in run.task.loss_counts(b)]).cpu()
              for b in micro]
    local = torch.stack(counts).sum(0)
    total = dist.sum(local)
    optimizer.zero_grad(set_to_none=True)
    logs: dict[str, float] = {}
    loss_sum = 0.0
    for k, batch in enumerate(micro):
        factors = [float(c * dist.world_size / max(float(n), 1.0))
                   for c, n in zip(counts[k], total, strict=True)]
        last = k == len(micro) - 1
        sync = model.no_sync() if dist.enabled and not last else contextlib.nullcontext()
        with sync:
            with autocast:
                loss, micro_logs = run.task.scaled_loss(model, batch, rng, factors)
            (scaler.scale(loss) if scaler is not None else loss).backward()
        loss_sum += loss.detach().item()
        for key, value in micro_logs.items():
            logs[key] = logs.get(key, 0.0) + float(value)
    max_norm = run.trainer.max_grad_norm if run.trainer.max_grad_norm > 0 else float("inf")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if scaler is not None:
        scaler.unscale_(optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    if scaler is not None:  # fp16: an overflow skips the update and lowers the scale (not a divergence)
        scaler.step(optimizer)
        scaler.update()
        if not math.isfinite(loss_sum):
            raise Diverged(scheduler.last_epoch + 1, loss_sum)
    elif not torch.isfinite(grad_norm):  # the same on every process: DDP has averaged the gradients
        optimizer.zero_grad(set_to_none=True)
        raise Diverged(scheduler.last_epoch + 1, loss_sum)  # the scheduler counts the updates
    else:
        optimizer.step()
    scheduler.step()
    return {"loss": loss_sum, **logs}, float(grad_norm)


def _length(ids: list) -> int:
    """Tokens of an example (of its longest choice, for multiple choice)."""
    return max(map(len, ids)) if ids and isinstance(ids[0], list) else len(ids)


class _Features:
    """A list of feature dicts as a map-style dataset whose batched fetch pads them (``collate``)."""

    def __init__(self, features: Features, pad: int) -> None:
        self.features, self.pad = features, pad

    def __len__(self) -> int:
        return len(self.features)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        return collate([self.features[i] for i in indices], self.pad)


def _whole(batch: Any) -> Any:
    return batch


def micro_batches(dataset: Any, steps: torch.Tensor, micro_size: int, num_workers: int,
                  pin_memory: bool) -> Iterator[list[dict[str, torch.Tensor]]]:
    """For each row of ``steps`` (this process's examples of one update), its micro-batches as tensors; with
    ``num_workers`` a DataLoader reads them in worker processes (pinned memory for CUDA). Index lists are made
    as they are read, so nothing per example of the epoch is held as Python objects."""
    index_lists = (chunk.tolist() for row in steps for chunk in row.split(micro_size))
    per_step = -(-steps.shape[1] // micro_size) if len(steps) else 1
    if num_workers:
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=index_lists, num_workers=num_workers,
                                             collate_fn=_whole, pin_memory=pin_memory)
        source = iter(loader)
    else:
        source = (dataset.__getitems__(indices) for indices in index_lists)
    while True:
        group = list(itertools.islice(source, per_step))
        if not group:
            return
        yield group


class ProgressLines:
    """Where the output is not a terminal (a log file, a cluster's job output), progress is one line every
    ``every`` steps instead of a redrawn bar."""

    def __init__(self, name: str, total: int, every: int, enabled: bool, initial: int) -> None:
        self.name, self.total, self.every, self.enabled = name, total, every, enabled
        self.started, self.first = time.perf_counter(), initial

    def update(self, step: int, loss: float | None, tokens_per_second: float | None) -> None:
        if not self.enabled or (step % self.every and step != self.total):
            return
        elapsed = time.perf_counter() - self.started
        rate = (step - self.first) / max(elapsed, 1e-9)
        eta = (self.total - step) / rate if rate > 0 else float("nan")
        parts = [f"{self.name}: step {step}/{self.total}", f"{rate:.2f} steps/s"]
        if tokens_per_second:
            parts.append(f"{tokens_per_second:,.0f} tokens/s")
        if loss is not None:
            parts.append(f"loss {loss:.4g}")
        parts.append(f"eta {eta:.0f} s")
        print("  ".join(parts), file=sys.stderr, flush=True)


PEAK_TFLOPS = {  # dense tensor-core peaks (bf16 / fp16; tf32 for fp32) of common training GPUs, by name
    "H200": (989.0, 494.5), "H100": (989.0, 494.5), "A100": (312.0, 156.0), "L40S": (362.0, 183.0),
    "A10": (125.0, 62.5), "V100": (125.0, 15.7), "RTX 4090": (165.2, 82.6),
}


def peak_tflops(t: TrainerConfig, device: torch.device) -> float | None:
    """The device's peak for MFU: ``trainer.peak_tflops``, else a known CUDA GPU's, else None (no MFU)."""
    if t.peak_tflops:
        return t.peak_tflops
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, (half, single) in PEAK_TFLOPS.items():
        if key in name:
            return half if t.precision in ("bf16", "fp16") else single
    return None


def flops_per_token(module: torch.nn.Module) -> float:
    """6 x the parameters outside embedding tables: the forward and backward FLOPs a token costs in the
    matrix products (PaLM's MFU accounting, without the attention-score term)."""
    seen: set[int] = set()
    total = 0
    for sub in module.modules():
        if isinstance(sub, torch.nn.Embedding):
            seen.add(id(sub.weight))
    for p in module.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return 6.0 * total


def train(run: StageRun) -> dict[str, Any]:
    """Train one stage to ``max_steps``; returns its step count, speed, last training losses, dev metrics."""
    t, dist = run.trainer, run.dist
    per_update = t.batch_size * t.grad_accum_steps
    grouped = t.group_by_length and isinstance(run.train, list)
    lengths = [_length(f["input_ids"]) for f in run.train] if grouped else None
    order = BatchOrder(len(run.train), per_update, run.seed, dist.rank, dist.world_size, lengths)
    max_steps = total_steps(t, order)
    warmup = t.warmup_steps if t.warmup_steps is not None else round(t.warmup_ratio * max_steps)
    optimizer = make_optimizer(run.module, t)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_schedule(warmup, max_steps))
    rng = torch.Generator(device=run.device).manual_seed(run.seed * 1000 + 17 + dist.rank)  # masks, samples
    torch.manual_seed(run.seed * 1000 + 29 + dist.rank)  # dropout
    random.seed(run.seed + dist.rank)
    scaler = torch.amp.GradScaler(run.device.type) if t.precision == "fp16" else None
    state: dict[str, Any] = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "window": {}, "train_seconds": 0.0}
    if run.resume_from is not None:
        state = load_checkpoint(run.resume_from, module=run.module, optimizer=optimizer, scheduler=scheduler,
                                rng=rng, dist=dist)
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
    if t.compile:
        for part in run.task.compile_targets(run.module):
            compile_in_place(part)
    flops = flops_per_token(run.module)
    model = wrap(run.module, dist, run.device)
    autocast = autocast_for(t.precision, run.device)
    dataset = run.train if hasattr(run.train, "__getitems__") else _Features(run.train,
                                                                          run.task.tokenizer.pad_token_id)
    step, epoch, position = state["step"], state["epoch"], state["batch_in_epoch"]
    window, last_train = LossWindow(state["window"]), dict(state.get("last_train", {}))
    train_seconds, checkpoint = state["train_seconds"], run.resume_from
    tokens = state.get("tokens", 0)
    show = dist.is_main and t.progress
    terminal = sys.stderr.isatty()
    bar = tqdm(total=max_steps, initial=step, desc=f"{run.name}: {run.task.config.name}", unit="step",
               disable=not (show and terminal), dynamic_ncols=True)
    lines = ProgressLines(f"{run.name}: {run.task.config.name}", max_steps, t.log_every,
                          show and not terminal, step)
    rows = order.rows()
    pin = run.device.type == "cuda"
    diverged = None
    window_tokens, window_seconds = 0, 0.0
    with contextlib.ExitStack() as stack:
        stack.callback(bar.close)
        ctrl_c = stack.enter_context(ctrl_c_stops_after_the_step(not dist.enabled))
        while step < max_steps and diverged is None:
            steps = order.epoch(epoch)
            batches = micro_batches(dataset, steps[position:max_steps - step + position], t.batch_size,
                                    t.num_workers, pin)
            for micro in batches:
                started = time.perf_counter()
                step_tokens = sum(int(b["attention_mask"].sum()) for b in micro)
                micro = [run.task.training_batch(
                    {key: value.to(run.device, non_blocking=pin) for key, value in b.items()},
                    StepContext(run.seed, step, rows[k * t.batch_size:][:len(b["input_ids"])],
                                order.global_batch)) for k, b in enumerate(micro)]
                try:
                    losses, grad_norm = optimizer_step(run, model, micro, rng, optimizer, scheduler, autocast,
                                                       scaler)
                except Diverged as error:
                    diverged = error
                    break
                step, position = step + 1, position + 1
                seconds = time.perf_counter() - started
                train_seconds += seconds
                tokens += step_tokens
                window_tokens, window_seconds = window_tokens + step_tokens, window_seconds + seconds
                window.add(losses)
                bar.update(1)
                if step % t.log_every == 0 or step == max_steps:
                    last_train = window.flush(dist)
                    speed = dist.mean(window_tokens / max(window_seconds, 1e-9)) * dist.world_size
                    window_tokens, window_seconds = 0, 0.0
                    run.history.append({"stage": run.name, "task": run.task.config.name, "step": step,
                                        "split": "train", "epoch": epoch, "lr": scheduler.get_last_lr()[0],
                                        "grad_norm": grad_norm, "tokens_per_second": round(speed, 1),
                                        **last_train})
                    bar.set_postfix(loss=f"{last_train['loss']:.4g}")
                    lines.update(step, last_train.get("loss"), speed)
                if t.eval_every and step % t.eval_every == 0 and step < max_steps:
                    evaluate(run, step, autocast)
                stopping = ctrl_c["stop"] and step < max_steps
                if step % t.save_every == 0 or step == max_steps or step == t.stop_after or stopping:
                    at = (epoch + 1, 0) if position >= len(steps) else (epoch, position)  # the next batch
                    extra = {"scaler": scaler.state_dict()} if scaler is not None else {}
                    checkpoint = save_checkpoint(
                        run.checkpoint_dir, step, module=run.module, optimizer=optimizer, scheduler=scheduler,
                        rng=rng, dist=dist, keep=t.keep_checkpoints,
                        state={"epoch": at[0], "batch_in_epoch": at[1], "window": window.sums,
                               "last_train": last_train, "train_seconds": train_seconds, "tokens": tokens,
                               "global_batch": order.global_batch, **extra})
                if stopping:
                    raise Interrupted(step, checkpoint, "Ctrl-C", exit_code=130)
                if step == t.stop_after and step < max_steps:
                    raise Interrupted(step, checkpoint)
            if position >= len(steps):
                epoch, position = epoch + 1, 0
    dev = evaluate(run, step, autocast)
    result = {"diverged": str(diverged)} if diverged else {}
    tokens_per_second = dist.mean(tokens / max(train_seconds, 1e-9)) * dist.world_size
    speed = {"tokens_per_second": round(tokens_per_second, 1),
             "model_tflops": round(tokens_per_second * flops / 1e12, 4)}
    peak = peak_tflops(t, run.device)
    if peak:
        speed["mfu"] = round(tokens_per_second * flops / 1e12 / (peak * dist.world_size), 4)
    return {**result, "steps": step, "max_steps": max_steps, "epochs": round(step / order.steps_per_epoch, 3),
            "train_seconds": round(train_seconds, 3),
            "steps_per_second": round(step / max(train_seconds, 1e-9), 3), **speed,
            "global_batch": order.global_batch,
            "train": last_train, "dev": dev, "checkpoint": str(checkpoint) if checkpoint else None}
