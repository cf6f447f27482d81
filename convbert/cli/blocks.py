"""``convbert-blocks``: what blocks are installed, with their parameters and provider, and do they all work.

    convbert-blocks                      # table: kind, name, distribution (version), parameters=defaults
    convbert-blocks --kind mixer --json  # the same as JSON, for scripts
    convbert-blocks --check              # the block contract suite on every block; exit 1 on any failure
    convbert-blocks --kind task          # the training tasks: option, data (with its options), head, metric

The listing is the process-wide registry: built-ins, then every installed plugin's entry points (unless
CONVBERT_DISABLE_PLUGIN_AUTOLOAD=1), plus the modules given with ``--plugin``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from convbert.errors import ConvBertError
from convbert.registry import KINDS, BlockSpec, Registry, TaskSpec, dataclass_defaults

TASK_KIND = "task"


def describe(spec: BlockSpec) -> dict[str, Any]:
    """One block as plain data: what the table prints and ``--json`` writes."""
    return {
        "kind": spec.kind,
        "name": spec.name,
        "distribution": spec.distribution,
        "version": spec.version,
        "provider": spec.provider,
        "params": spec.defaults(),
        "description": spec.description,
    }


def describe_task(spec: TaskSpec) -> dict[str, Any]:
    """One training task as plain data: how to choose it, the data it reads (with the data node's options and
    their defaults), its default head and its main dev metric."""
    task = spec.task
    config = dataclass_defaults(task.config_class)
    head = config.get("head")
    return {
        "kind": TASK_KIND,
        "name": spec.name,
        "distribution": spec.distribution,
        "version": spec.version,
        "provider": spec.provider,
        "option": f"task={task.option or spec.name}",
        "data": task.data_name,
        "data_options": {k: v for k, v in dataclass_defaults(task.data_class).items() if k != "name"},
        "record_fields": list(task.record_fields),
        "head": head.get("name") if isinstance(head, dict) else head,
        "metric": task.metric,
        "greater_is_better": bool(task.greater_is_better),
        "description": (task.__doc__ or "").strip().splitlines()[0] if (task.__doc__ or "").strip() else "",
    }


def _task_table(rows: list[dict[str, Any]]) -> str:
    lines = []
    for r in rows:
        better = "higher" if r["greater_is_better"] else "lower"
        records = f" records: {', '.join(r['record_fields'])};" if r["record_fields"] else ""
        lines += [
            f"{r['name']}  ({r['option']}; provided by {r['distribution'] or r['provider']} "
            f"{r['version'] or ''}".rstrip() + ")",
            f"    {r['description']}" if r["description"] else None,
            f"    head: {r['head']}; metric: {r['metric']} ({better} is better);{records}",
            f"    data={r['data']}: {_format_params(r['data_options'])}",
        ]
    return "\n".join(line for line in lines if line is not None)


def _format_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in params.items()) or "-"


def _table(rows: list[dict[str, Any]]) -> str:
    headers = ("kind", "name", "provided by", "parameters (defaults)")
    cells = [
        (
            r["kind"],
            r["name"],
            f"{r['distribution'] or r['provider']} {r['version'] or ''}".strip(),
            _format_params(r["params"]),
        )
        for r in rows
    ]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(headers[:-1])]
    lines = []
    for row in (headers, *cells):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1])
    return "\n".join(lines)


def _check(registry: Registry, kind: str | None, as_json: bool) -> int:
    from convbert.testing import check_all

    results = {
        key: result
        for key, result in check_all(registry).items()
        if kind is None or key.startswith(f"{kind}/")
    }
    failed = [key for key, result in results.items() if result != "ok"]
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        width = max((len(key) for key in results), default=0)
        for key, result in results.items():
            print(f"{key.ljust(width)}  {'ok' if result == 'ok' else 'FAIL  ' + result}")
        print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="convbert-blocks",
        description="List the registered convbert blocks, or check them against their contract.",
    )
    parser.add_argument("--kind", choices=(*KINDS, TASK_KIND),
                        help="only blocks of this kind; `task`: the training tasks, their data and metric")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--check", action="store_true", help="run the block contract suite; exit 1 if any block fails"
    )
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="also register this plugin module (as a config's `plugins:` list does)",
    )
    args = parser.parse_args(argv)
    try:
        registry = Registry.default()
        registry.load_modules(args.plugin)
    except ConvBertError as exc:
        print(f"convbert-blocks: error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if args.kind == TASK_KIND:
            print("convbert-blocks: error: --check runs the block contract suite; tasks have none",
                  file=sys.stderr)
            return 2
        return _check(registry, args.kind, args.json)
    try:
        if args.kind == TASK_KIND:
            rows = [describe_task(registry.tasks[name]) for name in sorted(registry.tasks)]
            text = json.dumps(rows, indent=2, default=str) if args.json else _task_table(rows)
        else:
            rows = [describe(spec) for spec in registry.list_blocks(args.kind)]
            text = json.dumps(rows, indent=2, default=str) if args.json else _table(rows)
    except ConvBertError as exc:  # a task plugin that fails to load
        print(f"convbert-blocks: error: {exc}", file=sys.stderr)
        return 2
    try:
        print(text)
    except BrokenPipeError:  # `convbert-blocks | head`: the reader left; silence the flush at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
