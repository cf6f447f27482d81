"""``convbert-train`` (also ``python -m convbert.train``): the Hydra entry point for every training run.

    convbert-train                                   # the main job: RTD pretraining, then sentiment
    convbert-train task=token_classification pretrain=none trainer.max_steps=200
    convbert-train -m model.kernel_size=5,9,17       # a sweep with Hydra's basic launcher
    torchrun --nproc_per_node=2 -m convbert.train    # DistributedDataParallel, one process per core/GPU

The configs ship inside the package (``convbert/conf``), so an installed wheel runs exactly like a checkout.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import hydra
from omegaconf import DictConfig, open_dict

from convbert import settings
from convbert.errors import ConfigError, ConvBertError
from convbert.paths import CONF_DIR
from convbert.train.distributed import init_distributed, launched_by_torchrun
from convbert.train.schema import RunConfig
from convbert.user_errors import report_and_exit

NODES = ("model", "task", "data", "trainer", "pretrain")
GROUPS = ("model", "task", "data", "trainer", "pretrain", "experiment",
          "embedding", "mixer", "ffn", "layer", "head")
TOP_LEVEL = tuple(f for f in RunConfig.__dataclass_fields__ if f not in NODES)
PROG = "convbert-train"
# Hydra's own options: with these the command prints or composes something else than one run
HYDRA_OPTIONS = ("-h", "--help", "--hydra-help", "-c", "--cfg", "-i", "--info", "--resolve", "-p",
                 "--package", "--shell-completion", "--version", "-cp", "--config-path", "-cn",
                 "--config-name", "-cd", "--config-dir", "--experimental-rerun")


def group_options(group: str) -> list[str]:
    """The options of a config group: its YAML files in the shipped tree and in the plugins' config dirs (in
    subfolders too: ``task=glue/mrpc``)."""
    from convbert.registry import Registry

    roots = [CONF_DIR, *map(Path, Registry.default().config_dirs)]
    return sorted({p.relative_to(root / group).with_suffix("").as_posix()
                   for root in roots for p in (root / group).rglob("*.yaml")})


def check_group_option(key: str, group: str, value: str) -> None:
    """Refuse ``group=<option>`` naming no file of that group, listing its options (closest first)."""
    options = group_options(group)
    if not options or value in ("null", ""):
        return
    wanted = value.split(",") if "," in value and "(" not in value else [value]  # a sweep: each option
    for option in wanted:
        if option.strip() not in options:
            close = difflib.get_close_matches(option.strip(), options, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{key}={option}: no such option of config group {group!r}.{hint} Its "
                              f"options: {', '.join(options)} (conf/{group}/*.yaml or a plugin's config dir)")


def prepare_overrides(args: list[str]) -> list[str]:
    """Command-line overrides as convbert passes them to Hydra.

    Hydra refuses a misspelled ``trainer.lerning_rate=1`` with "Key 'lerning_rate' is not in struct" before
    convbert can name the valid keys. Values under model/task/data/trainer/pretrain are therefore passed
    as ``++key=value`` (set, or add if missing) and the run's schema check refuses unknown keys, listing the
    valid ones. A top-level key that is neither a config group nor a known key is refused here likewise.
    """
    out = []
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            out.append(arg)
            continue
        key, value = arg.split("=", 1)
        from convbert.train.model_config import refuse_list_parts  # the pre-role list syntax: name the roles

        refuse_list_parts(key, value)
        group = key.lstrip("+~").split("@", 1)[0]
        if group.split("/", 1)[0] in GROUPS and "." not in group:
            check_group_option(key.lstrip("+~"), group, value)
        if key.startswith(("+", "~", "hydra")) or "@" in key or "/" in key:
            out.append(arg)
        elif "." in key and key.split(".", 1)[0] in NODES:
            out.append("++" + arg)
        elif "." not in key and key not in GROUPS and key not in TOP_LEVEL:
            close = difflib.get_close_matches(key, [*TOP_LEVEL, *GROUPS], n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{key}: unknown key.{hint} Top-level keys: {', '.join(TOP_LEVEL)}; config "
                              f"groups: {', '.join(GROUPS[:6])} (choose an option with e.g. model=bert_tiny)")
        else:
            out.append(arg)
    return out


def plugin_search_path(args: Sequence[str]) -> list[str]:
    """``args`` with ``hydra.searchpath=[...]`` holding the config dirs plugins registered
    (``Registry.add_config_dir``), so an installed plugin's YAML (``conf/mixer/fourier.yaml``) composes like
    the shipped files. The user's own ``hydra.searchpath`` entries come first. The override goes next to the
    other overrides (Hydra's parser takes them as one run of words: not after an option such as ``--cfg``
    when overrides come before it). ``args`` unchanged when no plugin ships config files."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from convbert.registry import Registry

    dirs = [f"file://{d}" for d in Registry.default().config_dirs]
    if not dirs:
        return list(args)
    given = [a for a in args if "=" in a and a.split("=", 1)[0].lstrip("+") == "hydra.searchpath"]
    own: list[str] = []
    for arg in given:
        value = OverridesParser.create().parse_override(arg).value()
        own += [str(v) for v in (value if isinstance(value, list) else [value])]
    quoted = (p.replace("'", "\\'") for p in dict.fromkeys([*own, *dirs]))
    override = "hydra.searchpath=[" + ",".join(f"'{p}'" for p in quoted) + "]"
    rest = [a for a in args if a not in given]
    first = next((i for i, a in enumerate(rest) if "=" in a and not a.startswith("-")), len(rest))
    return [*rest[:first], override, *rest[first:]]


def compose_config(overrides: Sequence[str] = (), config_name: str = "train",
                   return_hydra_config: bool = False) -> DictConfig:
    """The config ``convbert-train <overrides>`` runs with, through Hydra's compose API (notebooks, tests).

    >>> cfg = compose_config(["task=pretrain_mlm", "trainer.max_steps=10"])
    >>> from convbert.train.job import run; run(cfg, "runs/mlm")  # doctest: +SKIP
    """
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="train"):
        args = prepare_overrides(list(overrides))
        return compose(config_name, overrides=plugin_search_path(args),
                       return_hydra_config=return_hydra_config)


def check_writable_dir(path: Path, key: str) -> None:
    """Refuse an output directory that cannot be created or written (a file in the way, no permission)."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{key}={path}: {existing} is a file, not a directory; choose another {key}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}={path}: {existing} is not writable by this user; choose another {key} "
                          "or fix its permissions")


def check_command_line(args: Sequence[str]) -> None:
    """Refuse a command line Hydra or the run's schema would refuse, as one ConfigError naming the override.

    Hydra reports its own errors (a malformed override, a missing group option, a key it cannot set) with
    exit status 1 and a hint about HYDRA_FULL_ERROR; here they are caught first. A single run is composed
    and checked in full; a sweep (``-m``) has each override parsed (each of its jobs is checked when it runs).
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from convbert.train.job import plan_run

    if any(a.split("=", 1)[0] in HYDRA_OPTIONS for a in args if a.startswith("-")):
        return
    overrides = [a for a in args if not a.startswith("-")]
    try:
        if "-m" in args or "--multirun" in args:
            OverridesParser.create().parse_overrides(overrides)
        else:
            cfg = compose_config(overrides, return_hydra_config=True)
            check_writable_dir(Path(cfg.hydra.run.dir), "hydra.run.dir")
            with open_dict(cfg):
                del cfg["hydra"]
            plan_run(cfg)
    except (HydraException, OmegaConfBaseException) as exc:
        given = " ".join(a.removeprefix("++") for a in overrides)
        raise ConfigError(f"{given}: {str(exc).strip()}") from None


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from convbert.train.job import run
    from convbert.train.loop import Interrupted

    hc = HydraConfig.get()
    overrides = [o[2:] if o.startswith("++") else o for o in hc.overrides.task]
    from convbert.data.glue import MissingTaskData

    try:  # a sweep's job that diverged stays in the sweep (its summary says so); a single run fails
        return run(cfg, hc.runtime.output_dir, overrides, fail_on_divergence=hc.mode == RunMode.RUN)
    except MissingTaskData as exc:  # experiment=glue over a GLUE folder without this task: the sweep goes on
        if hc.mode == RunMode.RUN:
            report_and_exit(PROG, exc)
        print(f"{PROG}: skipped {' '.join(overrides)}: {exc}", file=sys.stderr, flush=True)
        Path(hc.runtime.output_dir, "skipped.json").write_text(json.dumps({"reason": str(exc)}) + "\n")
        return None
    except Interrupted as stop:  # Ctrl-C: the checkpoint is written and the resume command printed
        sys.exit(stop.exit_code)
    except (ConvBertError, OSError) as exc:  # the user's to fix: one line, no traceback; else a bug
        report_and_exit(PROG, exc)


def passive_openmp() -> None:
    """Run again in a fresh interpreter with OpenMP threads that sleep instead of spinning while they wait.

    With spinning threads (libgomp's default) a training step on a machine whose cores are shared with another
    busy process takes many times longer; with passive waiting it costs next to nothing (docs/performance.md).
    libgomp reads OMP_WAIT_POLICY when torch loads, hence the new interpreter. Set OMP_WAIT_POLICY yourself
    to skip this (torchrun already gives each process one thread).
    """
    if "OMP_WAIT_POLICY" in os.environ or launched_by_torchrun():
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "convbert.train", *sys.argv[1:]])


def continue_own_run(args: list[str]) -> list[str]:
    """``resume=true hydra.run.dir=DIR`` (or ``resume=DIR``) continues that run's own configuration: its saved
    overrides, with the ones given now replacing the same keys (each change is printed)."""
    from convbert.train.job import resume_overrides, saved_overrides

    values = {a.split("=", 1)[0].lstrip("+"): a.split("=", 1)[1] for a in args if "=" in a}
    resume = values.get("resume", "false")
    if resume.lower() in ("false", "null", "none", ""):
        return args
    run_dir = values.get("hydra.run.dir") if resume.lower() == "true" else resume
    if not run_dir:
        return args
    saved = saved_overrides(Path(run_dir))
    if not saved:
        return args
    merged, changes = resume_overrides(saved, args)
    for change in changes:
        print(f"{PROG}: resuming with a changed setting: {change}", file=sys.stderr, flush=True)
    return merged


def main() -> None:
    """Console script ``convbert-train``."""
    passive_openmp()
    try:
        args = prepare_overrides(continue_own_run(sys.argv[1:]))
        check_command_line(args)
    except ConvBertError as exc:
        report_and_exit(PROG, exc)
    if launched_by_torchrun():
        # every process must write into the same run directory, and only process 0 writes Hydra's files
        dist = init_distributed()
        stamp = settings.run_stamp() or time.strftime("%Y-%m-%d_%H-%M-%S")
        os.environ[settings.RUN_STAMP] = dist.broadcast(stamp)  # in main, for this run's own processes
        if not dist.is_main:
            args += ["hydra.output_subdir=null", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]
    sys.argv = [sys.argv[0], *plugin_search_path(args)]
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # Hydra re-raises instead of printing half a traceback
    try:
        _hydra_main()
    except (ConvBertError, OSError) as exc:  # e.g. Hydra could not create hydra.run.dir
        report_and_exit(PROG, exc)


if __name__ == "__main__":
    main()
