"""``convbert-predict``: run a checkpoint's pipeline over a file of inputs, one JSON result per line.

    convbert-predict runs/sst2/model --input reviews.jsonl --output predictions.jsonl --top-k 2
    echo '{"question": "Who?", "context": "Ada wrote it."}' | convbert-predict runs/squad/model

The task is the one the checkpoint was saved for (config.json's ``architectures``) unless ``--task`` says
otherwise. Input: JSON lines, or plain text lines for the text tasks. For text tasks a line is
``{"text": ...}`` (text-classification also takes ``"text_pair"``) or a bare JSON string; for
question-answering ``{"question": ..., "context": ...}``. A file whose first line is not JSON is read as plain
text, one input per line. Blank lines are skipped. Each output line is what ``pipeline(task, model)(inputs)``
gives for that input in a list call (``pipe.predict``), written as JSON.

A mistake the user can fix (a malformed line, a missing file, a task the checkpoint cannot do) is one line,
``convbert-predict: error: <what, where, the fix>``, and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from convbert.errors import ConfigError, DataError
from convbert.user_errors import user_errors_reported

PROG = "convbert-predict"
TEXT_TASKS = ("fill-mask", "text-classification", "token-classification", "feature-extraction")
PROGRESS_FROM = 1000  # inputs: show the progress bar for this many even when stderr is not a terminal
CHUNK_BATCHES = 4  # batches per write: results reach the output file as they come


@contextmanager
def _output(path: str) -> Iterator[IO[str]]:
    if path == "-":
        yield sys.stdout
        return
    with open(path, "w", encoding="utf-8") as file:
        yield file


def _read_lines(path: str) -> tuple[str, list[tuple[int, str]]]:
    """(name for messages, [(line number, text)]) of the non-blank lines."""
    if path == "-":
        name, data = "<stdin>", sys.stdin.buffer.read()
    else:
        name = path
        if Path(path).is_dir():
            raise DataError(f"{path} is a directory; --input takes a file of JSON lines (or - for stdin)")
        data = Path(path).read_bytes()
    lines = []
    for number, raw in enumerate(data.splitlines(), start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{name}:{number}: not UTF-8 ({exc.reason} at byte {exc.start}); save the file "
                            "as UTF-8") from None
        if text.strip():
            lines.append((number, text.removeprefix("\ufeff") if number == 1 else text))
    return name, lines


def _example(task: str) -> str:
    if task == "question-answering":
        return '{"question": "Who wrote it?", "context": "Ada wrote it."}'
    if task == "text-classification":
        return '{"text": "A fine film."} (or {"text": ..., "text_pair": ...})'
    if task == "fill-mask":
        return '{"text": "Paris is the [MASK] of France."}'
    return '{"text": "Ada lives in Paris."}'


def read_inputs(path: str, task: str) -> tuple[str, list[int], list[Any]]:
    """(name, line numbers, pipeline inputs) of the file ``path`` (or stdin for "-") for ``task``."""
    name, lines = _read_lines(path)
    if not lines:
        return name, [], []
    first = lines[0][1].lstrip()
    as_json = task not in TEXT_TASKS or first.startswith("{") or _is_json_string(first)
    numbers, items = [], []
    for number, text in lines:
        where = f"{name}:{number}"
        if not as_json:
            numbers.append(number)
            items.append(text)
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc.msg}, column {exc.colno}); write one JSON value "
                            f"per line, e.g. {_example(task)}") from None
        numbers.append(number)
        items.append(_record(value, task, where))
    return name, numbers, items


def _is_json_string(text: str) -> bool:
    try:
        return isinstance(json.loads(text), str)
    except json.JSONDecodeError:
        return False


def _record(value: Any, task: str, where: str) -> Any:
    """One JSON value as the pipeline's input, or a DataError naming the line and the expected shape."""
    if task == "question-answering":
        if not isinstance(value, dict) or not {"question", "context"} <= set(value):
            got = f"keys {sorted(value)}" if isinstance(value, dict) else f"a JSON {type(value).__name__}"
            raise DataError(f"{where}: a question-answering line is an object with \"question\" and "
                            f"\"context\"; got {got}; e.g. {_example(task)}")
        extra = sorted(set(value) - {"question", "context"})
        if extra:
            raise DataError(f"{where}: unknown keys {extra}; a line holds \"question\" and \"context\"")
        return {"question": value["question"], "context": value["context"]}
    if isinstance(value, str):
        return value
    allowed = {"text", "text_pair"} if task == "text-classification" else {"text"}
    if not isinstance(value, dict) or "text" not in value or set(value) - allowed:
        got = f"keys {sorted(value)}" if isinstance(value, dict) else f"a JSON {type(value).__name__}"
        raise DataError(f"{where}: a {task} line is a JSON string or an object with "
                        f"{' and '.join(map(repr, sorted(allowed)))}; got {got}; e.g. {_example(task)}")
    for key in allowed & set(value):
        if not isinstance(value[key], str):
            raise DataError(f"{where}: \"{key}\" must be a string, got {type(value[key]).__name__}")
    if "text_pair" in value:
        return {"text": value["text"], "text_pair": value["text_pair"]}
    return value["text"]


def task_parameters(args: argparse.Namespace, task: str) -> dict[str, Any]:
    """The pipeline's keyword arguments from the options; an option that does not apply to ``task`` is an
    error (rather than silently doing nothing)."""
    options = {
        "top_k": ("--top-k", ("fill-mask", "text-classification", "question-answering")),
        "targets": ("--targets", ("fill-mask",)),
        "function_to_apply": ("--function-to-apply", ("text-classification",)),
        "aggregation_strategy": ("--aggregation-strategy", ("token-classification",)),
        "ignore_labels": ("--ignore-labels", ("token-classification",)),
        "stride": ("--stride", ("token-classification",)),
        "max_seq_len": ("--max-seq-len", ("question-answering",)),
        "doc_stride": ("--doc-stride", ("question-answering",)),
        "max_answer_len": ("--max-answer-len", ("question-answering",)),
        "handle_impossible_answer": ("--handle-impossible-answer", ("question-answering",)),
    }
    params = {}
    for key, (flag, tasks) in options.items():
        value = getattr(args, key)
        if value is None or value is False:
            continue
        if task not in tasks:
            raise ConfigError(f"{flag} does not apply to {task} (it is for {', '.join(tasks)})")
        params[key] = value
    if task in ("text-classification", "feature-extraction"):
        params["truncation"] = not args.no_truncation
    elif task == "fill-mask" and not args.no_truncation:
        params["tokenizer_kwargs"] = {"truncation": True}
    return params


def build_parser() -> argparse.ArgumentParser:
    from convbert.pipelines import supported_tasks

    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0].split(": ", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model",
                        help="a checkpoint directory (or anything ConvBertFor*.from_pretrained takes)")
    parser.add_argument("--task", choices=supported_tasks(),
                        help="default: the task the checkpoint was saved for")
    parser.add_argument("--input", default="-", help="JSON lines (or plain text lines) file; - for stdin")
    parser.add_argument("--output", default="-", help="where to write one JSON result per line; - for stdout")
    parser.add_argument("--batch-size", type=int, default=8, help="rows per model call (default 8)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cpu)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the model with its weights frozen first: a minute or two of "
                             "compiling, then faster CPU batches (docs/performance.md); for large inputs")
    parser.add_argument("--no-truncation", action="store_true",
                        help="fail on texts longer than the model reads instead of cutting them")
    tasks = parser.add_argument_group("task options (as the pipeline's keyword arguments)")
    tasks.add_argument("--top-k", type=int, help="fill-mask, text-classification, question-answering")
    tasks.add_argument("--targets", nargs="+", help="fill-mask: score only these tokens")
    tasks.add_argument("--function-to-apply", choices=["sigmoid", "softmax", "none"],
                       help="text-classification (default: from the config's problem_type and num_labels)")
    tasks.add_argument("--aggregation-strategy", choices=["none", "simple", "first", "average", "max"],
                       help="token-classification (default none)")
    tasks.add_argument("--ignore-labels", nargs="*", help="token-classification (default O)")
    tasks.add_argument("--stride", type=int, help="token-classification: read long texts in windows")
    tasks.add_argument("--max-seq-len", type=int, help="question-answering window length in tokens")
    tasks.add_argument("--doc-stride", type=int,
                       help="question-answering: tokens shared by neighbouring windows")
    tasks.add_argument("--max-answer-len", type=int, help="question-answering: longest answer in tokens")
    tasks.add_argument("--handle-impossible-answer", action="store_true",
                       help="question-answering: allow the empty answer")
    return parser


def predict(args: argparse.Namespace) -> int:
    """Read, check every line, then run and write in chunks; returns the number of results written."""
    from convbert.pipelines import PipelineInputError, pipeline, pipeline_class, task_of_checkpoint

    task = pipeline_class(args.task or task_of_checkpoint(args.model)).task
    params = task_parameters(args, task)
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}")
    pipe = pipeline(task, model=args.model, device=args.device, **params)
    if args.compile:
        from convbert.compilation import compile_for_inference

        compile_for_inference(pipe.model)
    name, numbers, items = read_inputs(args.input, task)
    call = pipe.parameters()
    try:
        prepared = pipe.prepare(items, call)
    except PipelineInputError as exc:
        raise DataError(f"{name}:{numbers[exc.index]}: {exc.reason}") from None
    show = not args.no_progress and len(items) > args.batch_size \
        and (sys.stderr.isatty() or len(items) >= PROGRESS_FROM)
    from tqdm.auto import tqdm

    chunk = args.batch_size * CHUNK_BATCHES
    with _output(args.output) as out, tqdm(total=len(items), unit="input", desc=PROG, file=sys.stderr,
                                           disable=not show) as bar:
        for start in range(0, len(prepared), chunk):
            for result in pipe.run(prepared[start:start + chunk], call, args.batch_size):
                out.write(json.dumps(result, ensure_ascii=False) + "\n")
            out.flush()
            bar.update(min(chunk, len(prepared) - start))
    return len(items)


def main(argv: Sequence[str] | None = None) -> None:
    """Console script ``convbert-predict``."""
    args = build_parser().parse_args(argv)
    with user_errors_reported(PROG):
        predict(args)


if __name__ == "__main__":
    main()
