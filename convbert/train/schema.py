"""The run configuration's contract: dataclasses for trainer, task and data, checked before anything runs.

Hydra composes plain YAML from ``convbert/conf``; these dataclasses say which keys exist, their types and
their defaults. ``check_node`` merges a node into its dataclass and raises ConfigError naming the key path,
the closest valid key and all valid keys, so a misspelled ``trainer.lerning_rate`` is caught with its fix.
Block nodes (the model and the task heads) are checked by the block registry's own parameter dataclasses.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from convbert.errors import ConfigError


@dataclass
class TrainerConfig:
    max_steps: int | None = None  # None: `epochs` epochs
    epochs: float = 1.0
    batch_size: int = 32  # per process
    group_by_length: bool = False  # batches of similar lengths (less padding), as Hugging Face's option
    eval_batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
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
    keep_checkpoints: int = 1
    stop_after: int | None = None
    progress: bool = True


@dataclass
class MaskedLMTask:
    name: str = "pretrain_mlm"
    mask_prob: float = 0.15
    mask_token_prob: float = 0.8
    random_token_prob: float = 0.1
    head: Any = field(default_factory=lambda: {"name": "masked_lm"})


@dataclass
class ReplacedTokenDetectionTask:
    name: str = "pretrain_rtd"
    mask_prob: float = 0.15
    mask_token_prob: float = 0.8
    random_token_prob: float = 0.1
    generator_size_divisor: int = 4
    discriminator_weight: float = 50.0
    generator_weight: float = 1.0
    sampling: str = "gumbel"
    temperature: float = 1.0
    tie_encoder: bool = False  # true: the generator is the discriminator's encoder + an MLM head (divisor 1)
    judge_special_tokens: bool = False  # true: ELECTRA's loss over [CLS]/[SEP] too (they are never replaced)
    head: Any = field(default_factory=lambda: {"name": "replaced_token_detection"})


@dataclass
class SequenceClassificationTask:
    name: str = "sequence_classification"
    head: Any = field(default_factory=lambda: {"name": "sequence_classification"})


@dataclass
class TokenClassificationTask:
    name: str = "token_classification"
    label_all_subwords: bool = False
    head: Any = field(default_factory=lambda: {"name": "token_classification"})


@dataclass
class QuestionAnsweringTask:
    name: str = "question_answering"
    max_answer_length: int = 30
    doc_stride: int | None = 32  # tokens shared by neighbouring windows of a long context; null: truncate
    max_question_length: int | None = 48  # a longer question keeps its first tokens; null: never cut
    head: Any = field(default_factory=lambda: {"name": "question_answering"})


@dataclass
class MultipleChoiceTask:
    name: str = "multiple_choice"
    head: Any = field(default_factory=lambda: {"name": "multiple_choice"})


TASK_SCHEMAS: dict[str, type] = {
    "pretrain_mlm": MaskedLMTask,
    "pretrain_rtd": ReplacedTokenDetectionTask,
    "sequence_classification": SequenceClassificationTask,
    "token_classification": TokenClassificationTask,
    "question_answering": QuestionAnsweringTask,
    "multiple_choice": MultipleChoiceTask,
}
PRETRAINING_TASKS = ("pretrain_mlm", "pretrain_rtd")


@dataclass
class CorpusData:
    name: str = "corpus"
    sources: list[str] = field(default_factory=lambda: ["wikipedia", "lee"])
    path: Any = None  # a text file or a list of them; replaces `sources`
    paragraphs: str = "line"
    max_length: int = 128
    dev_fraction: float = 0.02
    max_examples: int | None = None
    max_dev_examples: int | None = 256


@dataclass
class LabelledData:
    name: str = "sentiment"
    train_file: str | None = None
    dev_file: str | None = None
    train_split: str = "train"
    dev_split: str = "dev"
    max_length: int = 128
    max_examples: int | None = None
    max_dev_examples: int | None = None


DATA_SCHEMAS: dict[str, type] = {
    "corpus": CorpusData,
    "sentiment": LabelledData,
    "token_classification": LabelledData,
    "qa": LabelledData,
    "multiple_choice": LabelledData,
}
# The data each task reads (task name -> data name).
TASK_DATA = {
    "pretrain_mlm": "corpus",
    "pretrain_rtd": "corpus",
    "sequence_classification": "sentiment",
    "token_classification": "token_classification",
    "question_answering": "qa",
    "multiple_choice": "multiple_choice",
}
# The config group option that selects each data node, for error messages.
TASK_OPTION = {
    "pretrain_mlm": "pretrain_mlm",
    "pretrain_rtd": "pretrain_rtd",
    "sequence_classification": "sentiment",
    "token_classification": "token_classification",
    "question_answering": "question_answering",
    "multiple_choice": "multiple_choice",
}


@dataclass
class RunSchema:
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


@dataclass
class Stage:
    """One training stage: what to optimise (task), on what (data), how (trainer)."""

    name: str  # "pretrain" or "task"
    task: Any
    data: Any
    trainer: TrainerConfig
    path: str  # where the nodes live in the config: "" or "pretrain."


# -- checking ---------------------------------------------------------------------------------------------
def _as_dict(node: Any, path: str) -> dict[str, Any]:
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    if not isinstance(node, Mapping):
        raise ConfigError(f"{path}: expected a mapping of keys to values, got {node!r}")
    return dict(node)


def unknown_key_error(path: str, key: str, valid: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    where = f"{path}.{key}" if path else key
    of = f" of {path}" if path else ""
    return ConfigError(f"{where}: unknown key.{hint} Valid keys{of}: {', '.join(valid)}")


def check_node(schema: type, node: Any, path: str) -> Any:
    """``node`` merged into the dataclass ``schema``: defaults filled, unknown keys, wrong types refused."""
    values = _as_dict(node, path)
    valid = [f.name for f in dataclasses.fields(schema)]
    for key in values:
        if key not in valid:
            raise unknown_key_error(path, key, valid)
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), values))
    except OmegaConfBaseException as exc:
        key = str(getattr(exc, "full_key", None) or getattr(exc, "key", None) or "?")
        expected = ""
        for f in dataclasses.fields(schema):
            if f.name == key.split(".")[0]:
                expected = f" (expected {getattr(f.type, '__name__', f.type)})"
        raise ConfigError(f"{path}.{key}: {str(exc).splitlines()[0]}{expected}") from exc


def _require(ok: bool, path: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{path}: {message}")


def check_trainer(node: Any, path: str) -> TrainerConfig:
    t = check_node(TrainerConfig, node, path)
    _require(t.max_steps is None or t.max_steps >= 1, f"{path}.max_steps", "must be >= 1 (or null: epochs)")
    _require(t.epochs > 0, f"{path}.epochs", "must be > 0")
    for key in ("batch_size", "eval_batch_size", "log_every", "save_every", "keep_checkpoints"):
        _require(getattr(t, key) >= 1, f"{path}.{key}", "must be >= 1")
    _require(t.learning_rate > 0, f"{path}.learning_rate", "must be > 0")
    _require(len(t.adam_betas) == 2 and all(0 <= b < 1 for b in t.adam_betas), f"{path}.adam_betas",
             "must be two numbers in [0, 1), e.g. [0.9, 0.999]")
    _require(0 <= t.warmup_ratio <= 1, f"{path}.warmup_ratio", "must be in [0, 1]")
    _require(t.precision in ("fp32", "bf16"), f"{path}.precision",
             f"{t.precision!r} is not one of fp32, bf16 (bf16 runs the forward pass under autocast)")
    _require(t.device == "auto" or t.device == "cpu" or t.device.startswith("cuda"), f"{path}.device",
             f"{t.device!r} is not auto, cpu, cuda or cuda:N")
    _require(t.stop_after is None or t.stop_after >= 1, f"{path}.stop_after", "must be >= 1 or null")
    _require(t.eval_every is None or t.eval_every >= 1, f"{path}.eval_every", "must be >= 1 or null")
    return t


def check_task(node: Any, path: str) -> Any:
    values = _as_dict(node, path)
    name = values.get("name")
    if name not in TASK_SCHEMAS:
        close = difflib.get_close_matches(str(name), list(TASK_SCHEMAS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"{path}.name: unknown task {name!r}.{hint} Tasks: {', '.join(TASK_SCHEMAS)} "
            "(choose one with task=<option>; options are the files in conf/task)"
        )
    task = check_node(TASK_SCHEMAS[name], values, path)
    if hasattr(task, "mask_prob"):
        _require(0 < task.mask_prob < 1, f"{path}.mask_prob", "must be in (0, 1), e.g. 0.15")
        _require(task.mask_token_prob >= 0 and task.random_token_prob >= 0
                 and task.mask_token_prob + task.random_token_prob <= 1, f"{path}.mask_token_prob",
                 "mask_token_prob and random_token_prob must be >= 0 and sum to at most 1 (e.g. 0.8 and 0.1)")
    if name == "pretrain_rtd":
        _require(task.generator_size_divisor >= 1, f"{path}.generator_size_divisor", "must be >= 1")
        _require(not task.tie_encoder or task.generator_size_divisor == 1, f"{path}.tie_encoder",
                 "shares the discriminator's encoder, so it needs generator_size_divisor=1")
        _require(task.sampling in ("gumbel", "multinomial"), f"{path}.sampling",
                 f"{task.sampling!r} is not gumbel or multinomial")
        _require(task.temperature > 0, f"{path}.temperature", "must be > 0")
    return task


def check_data(node: Any, path: str, task_name: str, task_path: str) -> Any:
    values = _as_dict(node, path)
    name = values.get("name")
    if name not in DATA_SCHEMAS:
        raise ConfigError(f"{path}.name: unknown data {name!r}; data nodes are {', '.join(DATA_SCHEMAS)}")
    wanted = TASK_DATA[task_name]
    if name != wanted:
        select = "data@pretrain.data" if path.startswith("pretrain") else "data"
        raise ConfigError(
            f"{path}: task {task_name!r} ({task_path}) reads {wanted!r} data but {path}.name is {name!r}; "
            f"select it with {select}={wanted}"
        )
    data = check_node(DATA_SCHEMAS[name], values, path)
    _require(data.max_length >= 8, f"{path}.max_length", "must be >= 8 tokens")
    for key in ("max_examples", "max_dev_examples"):
        value = getattr(data, key)
        _require(value is None or value >= 1, f"{path}.{key}", "must be >= 1 or null")
    if name != "corpus":
        from convbert.data import SPLITS

        valid = (*SPLITS, "smoke") if name in ("qa", "multiple_choice") else SPLITS
        for key in ("train_split", "dev_split"):
            _require(getattr(data, key) in valid, f"{path}.{key}",
                     f"{getattr(data, key)!r} is not a split of the shipped {name} data ({', '.join(valid)})")
    if name == "corpus":
        _require(data.paragraphs in ("line", "blank_line"), f"{path}.paragraphs",
                 f"{data.paragraphs!r} is not line or blank_line")
        _require(0 < data.dev_fraction < 1, f"{path}.dev_fraction", "must be in (0, 1)")
        if data.path is None:
            from convbert.data import CORPUS_SOURCES

            bad = [s for s in data.sources if s not in CORPUS_SOURCES]
            _require(not bad and bool(data.sources), f"{path}.sources",
                     f"{bad or '[]'}: sources are {', '.join(CORPUS_SOURCES)} (or set {path}.path=your.txt)")
    return data


def check_stage(name: str, node: Mapping[str, Any], prefix: str) -> Stage:
    for key in ("task", "data", "trainer"):
        if node.get(key) is None:
            raise ConfigError(f"{prefix}{key}: missing; every stage needs task, data and trainer")
    task = check_task(node["task"], f"{prefix}task")
    data = check_data(node["data"], f"{prefix}data", task.name, f"{prefix}task")
    trainer = check_trainer(node["trainer"], f"{prefix}trainer")
    return Stage(name=name, task=task, data=data, trainer=trainer, path=prefix)


def check_run(cfg: Any) -> tuple[RunSchema, list[Stage]]:
    """The top level and every stage; the model node is checked separately (it needs the registry)."""
    values = _as_dict(cfg, "")
    values.pop("hydra", None)
    run = check_node(RunSchema, values, "") if values else RunSchema()
    stages = []
    if run.pretrain is not None:
        pre = _as_dict(run.pretrain, "pretrain")
        valid = ["task", "data", "trainer"]
        for key in pre:
            if key not in valid:
                raise unknown_key_error("pretrain", key, valid)
        if pre:
            stage = check_stage("pretrain", pre, "pretrain.")
            if stage.task.name not in PRETRAINING_TASKS:
                raise ConfigError(f"pretrain.task.name: {stage.task.name!r} is not a pretraining task "
                                  f"({', '.join(PRETRAINING_TASKS)})")
            stages.append(stage)
    main = check_stage("task", {"task": run.task, "data": run.data, "trainer": run.trainer}, "")
    if stages and main.task.name in PRETRAINING_TASKS:
        raise ConfigError(
            f"task={TASK_OPTION[main.task.name]} with a pretrain stage ({stages[0].task.name}): pretraining "
            "twice is not supported; add pretrain=none"
        )
    stages.append(main)
    if not isinstance(run.resume, (bool, str)):
        raise ConfigError(f"resume: {run.resume!r} must be true, false or a run directory")
    return run, stages
