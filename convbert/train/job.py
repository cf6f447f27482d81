"""One training run: check the config, run its stages (pretrain, then the task), write the run directory.

    <run dir>/config.yaml        the resolved config
              metrics.jsonl      training and dev metrics of every stage (history.py)
              loss.png           the loss curves (plotting.py)
              summary.json       steps, speed, losses, dev metrics, baselines, parameter counts
              model/             the task's model: ConvBertFor<Task>.from_pretrained(<run dir>/model)
              pretrain/model/    the pretrained encoder (ConvBertModel), pretrain/generator/ for RTD
              checkpoints/<stage>/step-N/   resumable state (checkpoint.py)

``run`` is what the Hydra entry point calls; tests call it directly on a composed config.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from convbert.config import ConvBertConfig
from convbert.errors import ConfigError, ConvBertError, TrainingDiverged
from convbert.interop.files import atomic_write_text
from convbert.interop.hub import looks_like_local_path, resolve_pretrained
from convbert.kernels import autotune
from convbert.train import schema
from convbert.train.checkpoint import mark_done, resumable_checkpoint, stage_result
from convbert.train.distributed import Distributed, init_distributed, pick_device
from convbert.train.history import FILE as HISTORY_FILE
from convbert.train.history import History
from convbert.train.loop import Interrupted, StageRun, train
from convbert.train.model_config import count_parameters, declared_aliases, model_composition, vocab_size
from convbert.train.plotting import plot_history
from convbert.train.run_lock import run_dir_lock
from convbert.train.tasks import make_task
from convbert.train.vocabulary import resolve_tokenizer

log = logging.getLogger("convbert.train")
IGNORED_ON_RESUME = ("resume", "trainer.stop_after", "pretrain.trainer.stop_after", "trainer.progress",
                     "pretrain.trainer.progress")
OVERRIDES_FILE = "overrides.json"  # the run's own command line: resume=true continues with it


def override_key(override: str) -> str:
    """``trainer.max_steps`` of ``++trainer.max_steps=60`` (``model`` of ``model=bert_tiny``)."""
    return override.split("=", 1)[0].lstrip("+~")


def saved_overrides(run_dir: Path) -> list[str]:
    """The overrides a run was started (or last resumed) with, as ``resume=true`` continues it."""
    file = Path(run_dir) / OVERRIDES_FILE
    return json.loads(file.read_text()) if file.is_file() else []


def resume_overrides(saved: list[str], given: list[str]) -> tuple[list[str], list[str]]:
    """(the overrides a resumed run composes: its saved ones, with those given now replacing the same keys;
    the changes, one line each). One-off settings (stop_after, progress, resume) are not carried over."""
    new = {override_key(o): o for o in given if "=" in o}
    kept = [o for o in saved
            if override_key(o) not in new and not override_key(o).startswith(IGNORED_ON_RESUME)]
    old = {override_key(o): o for o in saved}
    changes = [f"{k}: {old[k].split('=', 1)[1] if k in old else '(default)'} -> {o.split('=', 1)[1]}"
               for k, o in new.items() if not k.startswith(IGNORED_ON_RESUME) and old.get(k) != o
               and not k.startswith("hydra")]
    return [*kept, *given], changes


def resolve_init_from(init_from: str | None) -> str | None:
    """init_from as a local directory: a Hugging Face Hub id (``org/name``) is fetched once into the Hub cache
    (config, tokenizer, weights) and its snapshot directory is what the run reads; a path is kept as given."""
    if init_from is None or Path(init_from).is_dir() or looks_like_local_path(init_from):
        return init_from
    try:
        return str(resolve_pretrained(init_from, for_what="all"))
    except ConvBertError as exc:
        raise ConfigError(f"init_from={init_from!r}: {exc}") from exc


def encoder_composition(cfg: DictConfig, init_from: str | None) -> tuple[dict[str, Any], str]:
    """(composition, its source): the checkpoint's config.json under init_from, else the model node."""
    if init_from is not None:
        path = Path(init_from)
        if not (path / "config.json").is_file():
            raise ConfigError(f"init_from={init_from!r}: no config.json there; pass a directory written by "
                              "save_pretrained (ours or Hugging Face's)")
        return ConvBertConfig.from_pretrained(path).encoder_composition(), f"init_from={init_from}"
    if cfg.get("model") is None:
        raise ConfigError("model: no model in the config; choose one with model=<option> (e.g. "
                          "model=convbert_small) or start from a checkpoint with init_from=<directory>")
    choice = _choice("model")
    composition = model_composition(cfg.model, declared=declared_aliases(choice, cfg.model))
    return composition, f"model={choice}" if choice else "model"


def _vocabulary_corpus(stages: list[schema.Stage]) -> Any:
    """The text a corpus vocabulary is drawn from: the run's pretraining corpus, else the shipped one."""
    for stage in stages:
        if stage.data.name == "corpus":
            return stage.data
    return schema.CorpusConfig()


def _choice(group: str) -> str | None:
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return HydraConfig.get().runtime.choices.get(group)
    return None


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def _config_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    a, b = _flatten(old), _flatten(new)
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and not k.startswith(IGNORED_ON_RESUME))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys]


def _say(dist: Distributed, message: str) -> None:
    if dist.is_main:
        print(message, flush=True)


def _prepare_run_dir(run_dir: Path, resuming: bool, resolved: dict[str, Any], dist: Distributed,
                     overrides: list[str] | None = None) -> None:
    """Refuse to overwrite another run; on resume, say what changed in the config. The command line's
    overrides are kept (``overrides.json``) for ``resume=true`` to continue the run's own configuration."""
    checkpoints_dir = run_dir / "checkpoints"
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not resuming and checkpoints_dir.exists() and any(checkpoints_dir.iterdir()):
            raise ConfigError(f"{run_dir} already holds a run ({checkpoints_dir}); continue it with "
                              "resume=true, or choose another hydra.run.dir")
        config_file = run_dir / "config.yaml"
        if resuming and config_file.exists():
            changes = _config_changes(OmegaConf.to_container(OmegaConf.load(config_file)), resolved)
            if changes:
                log.warning("resuming with a changed config: %s", "; ".join(changes))
        else:
            atomic_write_text(config_file, OmegaConf.to_yaml(resolved))
        if overrides is not None:
            own = [o for o in overrides if not override_key(o).startswith((*IGNORED_ON_RESUME, "hydra"))]
            atomic_write_text(run_dir / OVERRIDES_FILE, json.dumps(own, indent=1) + "\n")
    dist.barrier()


@dataclass
class RunPlan:
    """A run's checked config: its stages, the encoder they train, where it comes from."""

    run: schema.RunConfig
    stages: list[schema.Stage]
    composition: dict[str, Any]
    source: str
    encoder_parameters: int
    init: str | None
    skipped_pretrain: bool = False


def plan_run(cfg: DictConfig) -> RunPlan:
    """Check everything that can be checked before anything is written (schema, model, every stage's head),
    so a mistake is reported at once; the command line calls this before Hydra starts the run."""
    run_cfg, stages = schema.check_run(cfg)
    if isinstance(run_cfg.resume, str) and not Path(run_cfg.resume).is_dir():
        raise ConfigError(f"resume={run_cfg.resume!r}: no such run directory")
    init = resolve_init_from(run_cfg.init_from)
    skipped = init is not None and stages[0].name == "pretrain"
    if skipped:
        stages = stages[1:]
    composition, source = encoder_composition(cfg, init)
    if init != run_cfg.init_from:
        source = f"init_from={run_cfg.init_from} ({init})"
    encoder_parameters = count_parameters(composition)  # builds on the meta device: a bad block fails here
    for stage in stages:  # every stage's head before the first one trains
        make_task(stage.task, tokenizer=None, path=f"{stage.path}task").check(composition)
    return RunPlan(run_cfg, stages, composition, source, encoder_parameters, init, skipped)


def run(cfg: DictConfig, run_dir: str | Path, overrides: list[str] | None = None,
        fail_on_divergence: bool = False) -> float | None:
    """Run every stage of ``cfg`` writing into ``run_dir``; returns the last stage's dev metric
    (None when the run stopped early on ``trainer.stop_after``).

    A stage whose loss became NaN stops there and the run still writes its summary (a sweep goes on to its
    next job); with ``fail_on_divergence`` (a single command-line run) it then raises TrainingDiverged."""
    started = time.perf_counter()
    plan = plan_run(cfg)
    dist = init_distributed()
    run_dir, resuming = Path(run_dir), plan.run.resume is not False
    if isinstance(plan.run.resume, str):
        run_dir = Path(plan.run.resume)
    if plan.skipped_pretrain:
        _say(dist, f"init_from={plan.run.init_from}: starting from that checkpoint, so the pretrain stage is "
                   "skipped")
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved.pop("hydra", None)
    with run_dir_lock(run_dir, enabled=dist.is_main):
        metric, diverged = _run_stages(run_dir, resuming, resolved, plan, overrides, started, dist)
    if diverged and fail_on_divergence:
        raise TrainingDiverged(f"{diverged}. The run directory {run_dir} holds everything up to the step "
                               "before (model, checkpoints, metrics); lower trainer.learning_rate, raise "
                               "warm-up, or use trainer.precision=fp32")
    return metric


def _run_stages(run_dir: Path, resuming: bool, resolved: dict[str, Any], plan: RunPlan,
                overrides: list[str] | None, started: float,
                dist: Distributed) -> tuple[float | None, str | None]:
    """The part of ``run`` that writes into ``run_dir`` (under its lock): (dev metric, why it diverged)."""
    run_cfg, stages, composition, init = plan.run, plan.stages, plan.composition, plan.init
    source, encoder_parameters = plan.source, plan.encoder_parameters
    _prepare_run_dir(run_dir, resuming, resolved, dist, overrides)

    saved_tokenizer = run_dir / "tokenizer"
    tokenizer, tokenizer_source = resolve_tokenizer(run_cfg.tokenizer, init, vocab_size(composition),
                                                    _vocabulary_corpus(stages), saved_tokenizer, resuming,
                                                    progress=dist.is_main and stages[0].trainer.progress)
    if len(tokenizer) > vocab_size(composition):
        raise ConfigError(f"the tokenizer has {len(tokenizer)} tokens but the model's embedding has "
                          f"{vocab_size(composition)} (model.embedding.vocab_size); make them match")
    if dist.is_main and not saved_tokenizer.is_dir():
        tokenizer.save_pretrained(saved_tokenizer)
    history = History(run_dir / HISTORY_FILE, enabled=dist.is_main)
    if not resuming:
        history.keep([])

    results: list[dict[str, Any]] = []
    for stage in stages:
        checkpoints_dir = run_dir / "checkpoints" / stage.name
        finished = stage_result(checkpoints_dir) if resuming else None
        if finished is not None:
            _say(dist, f"{stage.name}: finished in the earlier run, reusing {finished['model_dir']}")
        else:
            resume_from = resumable_checkpoint(checkpoints_dir) if resuming else None
            if resuming:  # drop what the killed run logged after its checkpoint
                step = int(resume_from.name.removeprefix("step-")) if resume_from else -1
                history.keep([r["stage"] for r in results], stage.name, step)
                if resume_from is None and not results:
                    log.warning("resume: no checkpoint under %s, starting from scratch", checkpoints_dir)
            try:
                finished = _run_stage(stage, run_cfg.seed, composition, tokenizer, init, run_dir, resume_from,
                                      history, dist)
            except Interrupted as stop:
                _say(dist, f"{stage.name}: {stop}\ncontinue with: convbert-train resume=true "
                           f"hydra.run.dir={run_dir}")
                if stop.exit_code:
                    raise
                return None, None
        results.append(finished)
        init = finished["model_dir"]

    final = results[-1]
    metric = final["dev"].get(final["metric"])
    summary = {
        "run_dir": str(run_dir), "wall_seconds": round(time.perf_counter() - started, 2),
        "world_size": dist.world_size, "overrides": list(overrides or []), "model_source": source,
        "encoder_parameters": encoder_parameters, "tokenizer": tokenizer_source, "metric": final["metric"],
        "dev_metric": metric, "baseline": final["baseline"], "stages": results, "composition": composition,
        "resumed": resuming,
        # the GEMM library each product shape took on this machine (convbert/kernels/autotune.py): to repeat
        # the run elsewhere bitwise, pin them with CONVBERT_KERNELS
        "kernels": autotune.chosen(),
    }
    failed = [s for s in results if s.get("learned") is False]
    if failed:
        summary.update(learned=False, reason=f"{failed[0]['stage']} stage: {failed[0]['reason']}")
    elif any("learned" in s for s in results):
        summary["learned"] = True
    if dist.is_main:
        atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
        plot_history(history.records(), run_dir / "loss.png", title=f"{run_dir.name}: {source}")
        print(format_summary(summary), flush=True)
    dist.barrier()
    diverged = next((f"{s['stage']} stage: {s['diverged']}" for s in results if "diverged" in s), None)
    return metric, diverged


def _run_stage(stage: schema.Stage, seed: int, composition: dict[str, Any], tokenizer: Any, init: str | None,
               run_dir: Path, resume_from: Path | None, history: History,
               dist: Distributed) -> dict[str, Any]:
    """Build, load, train, save one stage; returns its result (also kept as checkpoints/<stage>/done.json)."""
    device = pick_device(stage.trainer.device, dist)
    if stage.trainer.num_threads:
        torch.set_num_threads(stage.trainer.num_threads)
    task = make_task(stage.task, tokenizer, path=f"{stage.path}task")
    task.progress = stage.trainer.progress and dist.is_main
    checkpoints_dir = run_dir / "checkpoints" / stage.name
    data_record = checkpoints_dir / "data.json"
    if resume_from is not None and data_record.is_file():  # the data the run started with, not read again
        task.reuse(json.loads(data_record.read_text()))
    train_features, dev_features = task.features(stage.data)  # first: a task may learn its label names
    record = task.data_record()
    if record is not None and dist.is_main:
        checkpoints_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(data_record, json.dumps(record, indent=1) + "\n")
    torch.manual_seed(seed)
    module = task.build(composition)
    if init is not None and resume_from is None:
        task.load_init(module, init)
    module.to(device)
    baseline = task.baseline(train_features, dev_features)
    parameters = sum(p.numel() for p in {id(p): p for p in module.parameters()}.values())
    train_examples, dev_examples = count_examples(train_features), count_examples(dev_features)
    windows = (f" ({len(train_features)} / {len(dev_features)} windows)"
               if (train_examples, dev_examples) != (len(train_features), len(dev_features)) else "")
    _say(dist, f"{stage.name}: {stage.task.name} on {train_examples} train / {dev_examples} dev "
               f"examples{windows}, {parameters / 1e6:.2f} M parameters, {device}"
               + (f", {dist.world_size} processes" if dist.enabled else ""))
    result = train(StageRun(name=stage.name, task=task, module=module, train=train_features, dev=dev_features,
                            trainer=stage.trainer, seed=seed, device=device, dist=dist, history=history,
                            checkpoint_dir=checkpoints_dir, resume_from=resume_from))
    result.update(learning_verdict(result, task.chance_loss(train_features), task.chance_level))
    model_dir = (run_dir if stage.name == "task" else run_dir / stage.name) / "model"
    if dist.is_main:
        task.save(module, model_dir, tokenizer)
    dist.barrier()
    result.update(stage=stage.name, task=stage.task.name, metric=task.metric,
                  greater_is_better=task.greater_is_better, baseline=baseline, model_dir=str(model_dir),
                  model_class=task.model_class_name(), parameters=parameters,
                  train_examples=train_examples, dev_examples=dev_examples,
                  train_features=len(train_features), dev_features=len(dev_features),
                  config={"task": asdict(stage.task), "data": asdict(stage.data),
                          "trainer": asdict(stage.trainer)})
    if dist.is_main:
        mark_done(checkpoints_dir, result)
    return result


LEARNED_FRACTION = 0.98  # a final training loss within 2% of the chance level is noise around it


def learning_verdict(result: dict[str, Any], chance: float | None,
                     chance_level: str = "the entropy of the training labels") -> dict[str, Any]:
    """``{"learned": bool, "reason": ...}`` for a stage whose task has a chance level (or that diverged);
    ``{}`` when there is nothing to judge by. Dead training must not pass for a result."""
    if "diverged" in result:
        return {"learned": False, "reason": f"{result['diverged']}; the stage stopped there (the weights are "
                                            "those of the step before). Try a lower learning_rate"}
    if chance is None:
        return {}
    final = result["train"].get("loss")
    if final is None or not math.isfinite(final) or final >= LEARNED_FRACTION * chance:
        return {"learned": False, "chance_loss": round(chance, 4),
                "reason": f"the training loss ended at {_fmt(final)}, not below the chance level "
                          f"{chance:.4g} ({chance_level}) by the 2% a model that learned must clear: the "
                          "model did not learn from its inputs. Try a lower learning_rate, more warm-up or "
                          "more steps"}
    return {"learned": True, "chance_loss": round(chance, 4)}


def count_examples(features: Any) -> int:
    """Examples, not features: a long QA context gives one feature per window, all with its ``_example``."""
    if isinstance(features, list) and features and "_example" in features[0]:
        return len({f["_example"] for f in features})
    return len(features)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def format_summary(summary: dict[str, Any]) -> str:
    """The printed end of a run: one line per stage, then the dev metric beside its baseline."""
    millions = summary["encoder_parameters"] / 1e6
    lines = [f"convbert-train finished in {summary['wall_seconds']:.1f} s -> {summary['run_dir']}",
             f"  model: {summary['model_source']}, {millions:.2f} M encoder parameters, "
             f"tokenizer: {summary['tokenizer']}"]
    final = summary["stages"][-1]
    for s in summary["stages"]:
        dev = ", ".join(f"{k} {_fmt(v)}" for k, v in s["dev"].items())
        speed = f"{s['steps']:>5} steps  {s['steps_per_second']:>6.2f} steps/s"
        if s.get("tokens_per_second"):
            speed += f" {s['tokens_per_second']:>9,.0f} tokens/s"
            speed += f" (MFU {s['mfu']:.1%})" if "mfu" in s else ""
        baseline = ", ".join(f"{k} {_fmt(v)}" for k, v in s["baseline"].items())
        lines.append(f"  {s['stage']:<8} {s['task']:<24} {speed}  train loss {_fmt(s['train'].get('loss'))}  "
                     f"dev: {dev}" + (f"  (baseline: {baseline})" if baseline and s is not final else ""))
    lines.append(f"  saved: {final['model_dir']}  ({final['model_class']}.from_pretrained)")
    baseline = ", ".join(f"{k} {_fmt(v)}" for k, v in summary["baseline"].items())
    result = f"dev {summary['metric']}: {_fmt(summary['dev_metric'])}"
    lines.append(result + (f"   baseline: {baseline}" if baseline else ""))
    if summary.get("learned") is False:
        lines.append(f"NOT LEARNED: {summary['reason']}.\nThe dev {summary['metric']} above is not evidence "
                     "of learning.")
    return "\n".join(lines)
