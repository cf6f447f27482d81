"""The run configuration's contract: trainer, data and run dataclasses, checked before anything runs.

Hydra composes plain YAML from ``convbert/conf``; these dataclasses say which keys exist, their types and
their defaults, and ``convbert.checking`` refuses an unknown key with the closest valid one, so a misspelled
``trainer.lerning_rate`` is caught with its fix. Task nodes are checked by their registered task's
``config_class`` (``convbert.train.tasks``), block nodes (the model, the heads) by the blocks' dataclasses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from convbert.checking import as_dict, check_dataclass, require, unknown_key_error
from convbert.errors import ConfigError
from convbert.registry import Registry


@dataclass
class TrainerConfig:
    max_steps: int | None = None  # None: `epochs` epochs
    epochs: float = 1.0
    batch_size: int = 32  # per process and micro-batch
    grad_accum_steps: int = 1  # micro-batches per update: the global batch is batch_size x this x processes
    group_by_length: bool = False  # batches of similar lengths (less padding), as Hugging Face's option
    eval_batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    layerwise_lr_decay: float | None = None  # fine-tuning: layer d of n learns at lr x this^(n + 2 - d)
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    adam_eps: float = 1e-6
    warmup_ratio: float = 0.1
    warmup_steps: int | None = None
    max_grad_norm: float = 1.0
    precision: str = "fp32"
    compile: bool = False
    device: str = "auto"
    num_threads: int | None = None
    log_every: int = 10
    eval_every: int | None = None
    save_every: int = 200
    keep_checkpoints: int = 2
    stop_after: int | None = None
    progress: bool = True
    num_workers: int = 0  # DataLoader worker processes reading batches (0: in the training process)
    peak_tflops: float | None = None  # the device's peak for the model FLOP utilisation (known GPUs: auto)


@dataclass
class CorpusConfig:
    name: str = "corpus"
    sources: list[str] = field(default_factory=lambda: ["wikipedia", "lee"])
    path: Any = None  # a file, glob or directory, or a list of them; replaces `sources`
    paragraphs: str = "line"
    text_field: str = "text"  # the text column of JSONL / parquet / datasets inputs
    cache_dir: str | None = None  # where token stores are kept (default ~/.cache/convbert/tokens)
    prepare_workers: int | None = None  # tokenizing processes when a store is prepared (null: every CPU)
    two_segments: bool = True  # ELECTRA's [CLS] a [SEP] b [SEP] where a document starts inside a window
    max_length: int = 128
    dev_fraction: float = 0.02
    max_examples: int | None = None
    max_dev_examples: int | None = 256


@dataclass
class LabelledDataConfig:
    name: str = "sentiment"
    train_file: str | None = None
    dev_file: str | None = None
    train_split: str = "train"
    dev_split: str = "dev"
    max_length: int = 128
    max_examples: int | None = None
    max_dev_examples: int | None = None
    labels: list[str] | None = None  # class names in id order, for files whose labels are names


@dataclass
class TextDataConfig(LabelledDataConfig):
    """Labelled texts: one text per record, or a sentence pair (``text_fields: [sentence1, sentence2]``)."""

    text_fields: list[str] = field(default_factory=lambda: ["text"])


@dataclass
class RunConfig:
    """The top level of the composed config (``model`` is checked by the registry, see model_config.py)."""

    model: Any = None
    task: Any = None
    data: Any = None
    trainer: Any = None
    pretrain: Any = None
    seed: int = 0
    init_from: str | None = None
    resume: Any = False
    tokenizer: str = "auto"


def pretraining_tasks() -> list[str]:
    """The registered tasks that may run as the `pretrain` stage."""
    return sorted(name for name, spec in Registry.default().tasks.items() if spec.task.pretraining)


@dataclass
class Stage:
    """One training stage: what to optimise (task), on what (data), how (trainer)."""

    name: str  # "pretrain" or "task"
    task: Any
    data: Any
    trainer: TrainerConfig
    path: str  # where the nodes live in the config: "" or "pretrain."


# -- checking ---------------------------------------------------------------------------------------------
def check_node(schema: type, node: Any, path: str) -> Any:
    """``node`` merged into the dataclass ``schema`` (``convbert.checking``: one checker for every node)."""
    return check_dataclass(schema, node, path)


def check_trainer(node: Any, path: str) -> TrainerConfig:
    t = check_node(TrainerConfig, node, path)
    require(t.max_steps is None or t.max_steps >= 1, f"{path}.max_steps", "must be >= 1 (or null: epochs)")
    require(t.epochs > 0, f"{path}.epochs", "must be > 0")
    for key in ("batch_size", "eval_batch_size", "log_every", "save_every", "keep_checkpoints"):
        require(getattr(t, key) >= 1, f"{path}.{key}", "must be >= 1")
    require(t.learning_rate > 0, f"{path}.learning_rate", "must be > 0")
    require(len(t.adam_betas) == 2 and all(0 <= b < 1 for b in t.adam_betas), f"{path}.adam_betas",
             "must be two numbers in [0, 1), e.g. [0.9, 0.999]")
    require(0 <= t.warmup_ratio <= 1, f"{path}.warmup_ratio", "must be in [0, 1]")
    require(t.precision in ("fp32", "bf16", "fp16"), f"{path}.precision",
             f"{t.precision!r} is not one of fp32, bf16, fp16 (the forward pass under autocast; fp16 with a "
             "gradient scaler, on CUDA)")
    if t.precision == "fp16":
        import torch

        cpu = t.device == "cpu" or (t.device == "auto" and not torch.cuda.is_available())
        require(not cpu, f"{path}.precision", "fp16 needs a CUDA device (this run is on the CPU); use "
                "bf16 on the CPU")
    require(t.layerwise_lr_decay is None or 0 < t.layerwise_lr_decay <= 1, f"{path}.layerwise_lr_decay",
            "must be in (0, 1] or null, e.g. 0.8")
    require(t.grad_accum_steps >= 1, f"{path}.grad_accum_steps", "must be >= 1")
    require(t.num_workers >= 0, f"{path}.num_workers", "must be >= 0")
    require(t.peak_tflops is None or t.peak_tflops > 0, f"{path}.peak_tflops", "must be > 0 or null")
    require(t.device == "auto" or t.device == "cpu" or t.device.startswith("cuda"), f"{path}.device",
             f"{t.device!r} is not auto, cpu, cuda or cuda:N")
    require(t.stop_after is None or t.stop_after >= 1, f"{path}.stop_after", "must be >= 1 or null")
    require(t.eval_every is None or t.eval_every >= 1, f"{path}.eval_every", "must be >= 1 or null")
    return t


def check_task(node: Any, path: str) -> Any:
    """The task node, checked against its registered task's schema (``convbert.train.tasks``)."""
    values = as_dict(node, path)
    spec = Registry.default().task(values.get("name"), f"{path}.name")
    task = check_node(spec.task.config_class, values, path)
    spec.task.check_config(task, path)
    return task


def check_data(node: Any, path: str, task_name: str, task_path: str) -> Any:
    """The data node, checked against the schema of the data its task reads."""
    values = as_dict(node, path)
    task_class = Registry.default().task(task_name, f"{task_path}.name").task
    wanted = task_class.data_name
    if values.get("name") != wanted:
        select = "data@pretrain.data" if path.startswith("pretrain") else "data"
        raise ConfigError(
            f"{path}: task {task_name!r} ({task_path}) reads {wanted!r} data but {path}.name is "
            f"{values.get('name')!r}; select it with {select}={wanted}"
        )
    data = check_node(task_class.data_class, values, path)
    task_class.check_data(data, path)
    return data


def check_stage(name: str, node: Mapping[str, Any], prefix: str) -> Stage:
    for key in ("task", "data", "trainer"):
        if node.get(key) is None:
            raise ConfigError(f"{prefix}{key}: missing; every stage needs task, data and trainer")
    task = check_task(node["task"], f"{prefix}task")
    data = check_data(node["data"], f"{prefix}data", task.name, f"{prefix}task")
    trainer = check_trainer(node["trainer"], f"{prefix}trainer")
    return Stage(name=name, task=task, data=data, trainer=trainer, path=prefix)


def check_run(cfg: Any) -> tuple[RunConfig, list[Stage]]:
    """The top level and every stage; the model node is checked separately (model_config.py)."""
    values = as_dict(cfg, "")
    values.pop("hydra", None)
    run = check_node(RunConfig, values, "") if values else RunConfig()
    stages = []
    if run.pretrain is not None:
        pre = as_dict(run.pretrain, "pretrain")
        valid = ["task", "data", "trainer"]
        for key in pre:
            if key not in valid:
                raise unknown_key_error("pretrain", key, valid)
        if pre:
            stage = check_stage("pretrain", pre, "pretrain.")
            if stage.task.name not in pretraining_tasks():
                raise ConfigError(f"pretrain.task.name: {stage.task.name!r} is not a pretraining task "
                                  f"({', '.join(pretraining_tasks())})")
            stages.append(stage)
    main = check_stage("task", {"task": run.task, "data": run.data, "trainer": run.trainer}, "")
    if stages and main.task.name in pretraining_tasks():
        option = Registry.default().task(main.task.name).task.option or main.task.name
        raise ConfigError(
            f"task={option} with a pretrain stage ({stages[0].task.name}): pretraining "
            "twice is not supported; add pretrain=none"
        )
    stages.append(main)
    if not isinstance(run.resume, (bool, str)):
        raise ConfigError(f"resume: {run.resume!r} must be true, false or a run directory")
    return run, stages
