"""Export a model to ONNX or to a ``torch.export`` program, with dynamic batch and sequence axes.

    from convbert.export import export_model
    export_model("checkpoints/sst2", "exported/sst2", format="onnx")          # exported/sst2/model.onnx
    export_model(model, "exported/mlm.pt2", format="torch-export")             # any ConvBertFor* instance

Inputs are Hugging Face's: ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64), (batch, sequence),
or (batch, choice, sequence) for multiple choice; outputs are named as transformers' ONNX configs name them
(``last_hidden_state``; ``logits``; ``start_logits`` and ``end_logits``). Both formats trace the model once
with ``torch.export.export`` (non-strict); ONNX then translates that program with ``torch.onnx.export``'s
dynamo exporter (the TorchScript exporter is not needed: the dynamo one handles every built-in block and
keeps ``torch.export.Dim`` axis names in the ONNX file). The padding mask is an input, so the padding-masked
convolution (``conv_mask_padding``) and attention masking hold in the exported graph as in eager mode.

Beside the exported file go ``config.json`` and, when the model came from a directory, its tokenizer files,
so the folder is usable on its own. The export is then run on a batch of another size and length than the
one it was traced with and compared to eager PyTorch (``check=True``). A model the exporter cannot express
raises ``NotExpressibleError`` naming the block that failed, the model's blocks, and the fix.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import re
import shutil
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from convbert.errors import ConfigError, ConvBertError, NotExpressibleError
from convbert.modeling import (
    ConvBertForMaskedLM,
    ConvBertForMultipleChoice,
    ConvBertForQuestionAnswering,
    ConvBertForSequenceClassification,
    ConvBertForTokenClassification,
    ConvBertModel,
    ConvBertPreTrainedModel,
    ConvBertWithHead,
)

logger = logging.getLogger(__name__)

FORMATS = ("onnx", "torch-export")
SUFFIXES = {"onnx": ".onnx", "torch-export": ".pt2"}
DEFAULT_OPSET = 18  # LayerNormalization is native from 17; 18 runs on onnxruntime >= 1.14
MAX_OPSET = 23  # the newest the dynamo exporter writes (torch.onnx._constants.ONNX_MAX_OPSET)
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
# transformers' task names (its pipelines and ONNX configs) -> the class that serves them
TASKS: dict[str, type[ConvBertPreTrainedModel]] = {
    "feature-extraction": ConvBertModel,
    "fill-mask": ConvBertForMaskedLM,
    "text-classification": ConvBertForSequenceClassification,
    "token-classification": ConvBertForTokenClassification,
    "question-answering": ConvBertForQuestionAnswering,
    "multiple-choice": ConvBertForMultipleChoice,
}
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json", "chat_template.jinja")
_NOT_OUTPUTS = ("loss", "hidden_states", "attentions")


class ExportDependencyError(ConvBertError, ImportError):
    """A package the chosen export format needs is not installed."""


class ExportWrapper(nn.Module):
    """The model as ``(input_ids, attention_mask, token_type_ids) -> {output name: tensor}``: what is traced.

    A task model whose class has no ``forward`` of its own (a plugin head on ``ConvBertWithHead``) runs as
    encoder then head.
    """

    def __init__(self, model: ConvBertPreTrainedModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        inputs = dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        model = self.model
        if isinstance(model, ConvBertWithHead) and type(model).forward is nn.Module.forward:
            encoded = model.convbert(**inputs, return_dict=True)
            out = model.head(encoded.last_hidden_state)
        else:
            out = model(**inputs, output_attentions=False, output_hidden_states=False, return_dict=True)
        return {k: v for k, v in out.items() if k not in _NOT_OUTPUTS and isinstance(v, torch.Tensor)}


def export_model(
    model_or_dir: ConvBertPreTrainedModel | str | Path,
    out: str | Path,
    format: str = "onnx",
    *,
    opset: int | None = None,
    task: str | None = None,
    tokenizer: Any = None,
    check: bool = True,
) -> Path:
    """Export a model (or a ``save_pretrained`` directory) and return the path of the exported file.

    ``out``: a file ending in ``.onnx`` / ``.pt2``, or a directory (``model.onnx`` / ``model.pt2`` inside).
    ``opset``: ONNX opset (default 18). ``task``: which class to load a directory as (one of ``TASKS``;
    default: the class config.json's ``architectures`` names, else the base model). ``tokenizer``: saved
    beside the export (a directory's own tokenizer files are copied anyway). ``check``: run the export on a
    padded batch of another shape and compare with eager PyTorch (ONNX: needs onnxruntime, else skipped).
    """
    if format not in FORMATS:
        raise ConfigError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    if opset is not None and format != "onnx":
        raise ConfigError("opset applies to --format onnx only")
    if opset is not None and not 17 <= opset <= MAX_OPSET:
        raise ConfigError(f"opset {opset} is not supported: use 17 to {MAX_OPSET} (default {DEFAULT_OPSET}; "
                          "the newest opsets need a recent onnxruntime)")
    model, source = _load(model_or_dir, task)
    path = _output_path(Path(out), format)
    if format == "onnx":
        _require_onnx()
    training = model.training
    wrapper = ExportWrapper(model).eval()  # inference: no dropout in the graph
    try:
        args = example_inputs(model, batch=2, length=8, seed=0)
        with torch.no_grad():
            output_names = list(wrapper(*args))
        shapes = dynamic_shapes(model)
        program = _trace(wrapper, args, shapes, format)
        path.parent.mkdir(parents=True, exist_ok=True)
        if format == "torch-export":
            torch.export.save(program, path)
        else:
            _to_onnx(program, path, opset or DEFAULT_OPSET, output_names, wrapper, shapes)
        _write_companions(model, source, tokenizer, path.parent)
        if check:
            check_export(path, wrapper)
    finally:
        model.train(training)
    return path


# -- inputs ---------------------------------------------------------------------------------------------
def is_multiple_choice(model: nn.Module) -> bool:
    head = getattr(model, "head_name", None)
    return isinstance(model, ConvBertForMultipleChoice) or head == "multiple_choice"


def max_length(model: ConvBertPreTrainedModel) -> int:
    embeddings = getattr(model.base_model, "embeddings", None)
    return int(getattr(embeddings, "max_positions", None) or model.config.max_position_embeddings)


def dynamic_shapes(model: ConvBertPreTrainedModel) -> dict[str, dict[int, torch.export.Dim]]:
    """One ``Dim`` per axis, shared by the three inputs: batch, (choice,) sequence up to the positions."""
    batch = torch.export.Dim("batch", min=1)
    sequence = torch.export.Dim("sequence", min=1, max=max_length(model))
    axes = {0: batch, 1: torch.export.Dim("choice", min=1), 2: sequence} if is_multiple_choice(model) \
        else {0: batch, 1: sequence}
    return dict.fromkeys(INPUT_NAMES, axes)


def example_inputs(model: ConvBertPreTrainedModel, batch: int, length: int, seed: int = 0,
                   choices: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A right-padded batch (every other row shorter, one row a single token) with two segments.

    Shaped (batch, choices, length) for multiple choice; ``length`` is capped at the position table.
    """
    length = min(length, max_length(model))
    config = model.config
    shape = (batch, choices, length) if is_multiple_choice(model) else (batch, length)
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, max(2, config.vocab_size), shape, generator=g)
    mask = torch.ones(shape, dtype=torch.long)
    rows = mask.view(-1, length)
    rows[1::2, max(1, length - 1 - length // 3):] = 0
    if rows.shape[0] > 2:
        rows[2, 1:] = 0
    pad = config.pad_token_id if config.pad_token_id is not None else 0
    ids = ids.masked_fill(mask == 0, pad)
    types = torch.zeros(shape, dtype=torch.long)
    if config.type_vocab_size > 1:
        types[..., length // 2:] = 1
    device = model.device
    return ids.to(device), mask.to(device), (types * mask).to(device)


# -- loading and writing --------------------------------------------------------------------------------
def _load(model_or_dir: Any, task: str | None) -> tuple[ConvBertPreTrainedModel, Path | None]:
    if isinstance(model_or_dir, ConvBertPreTrainedModel):
        if task is not None:
            raise ConfigError("task= selects the class to load a directory as; a model instance has one")
        return model_or_dir, None
    if isinstance(model_or_dir, nn.Module):
        raise ConfigError(f"export_model takes a convbert model or a checkpoint directory, got "
                          f"{type(model_or_dir).__name__}; load transformers models with convbert's classes "
                          "(ConvBertFor*.from_pretrained(dir)) first")
    from convbert.config import ConvBertConfig

    source = Path(model_or_dir)
    if not source.is_dir():
        raise ConfigError(f"model {str(source)!r} is not a directory; pass a checkpoint directory written by "
                          "save_pretrained (convbert's or transformers') or by convbert-train")
    config = ConvBertConfig.from_pretrained(source)
    if task is not None:
        if task not in TASKS:
            raise ConfigError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
        cls = TASKS[task]
    else:
        cls = _class_named((config.architectures or ["ConvBertModel"])[0])
    return cls.from_pretrained(source).eval(), source


def _class_named(name: str) -> type[ConvBertPreTrainedModel]:
    pending: list[type] = [ConvBertModel, ConvBertWithHead]
    while pending:
        cls = pending.pop(0)
        if cls.__name__ == name:
            return cls
        pending += cls.__subclasses__()
    raise ConfigError(f"config.json names architecture {name!r}, which convbert does not have; pass the task "
                      f"(--task / task=) as one of {', '.join(TASKS)}")


def _output_path(out: Path, format: str) -> Path:
    suffix = SUFFIXES[format]
    if out.suffix in SUFFIXES.values():
        if out.suffix != suffix:
            raise ConfigError(f"output {str(out)!r} ends in {out.suffix}, but --format {format} writes a "
                              f"{suffix} file: rename it, or give a directory")
        return out
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {str(out)!r} is a file: give a directory or a path ending in {suffix}")
    return out / f"model{suffix}"


def _write_companions(model: ConvBertPreTrainedModel, source: Path | None, tokenizer: Any, directory: Path):
    """config.json (with the exported class in ``architectures``) and the tokenizer, beside the export; an
    export written into the checkpoint directory itself leaves the checkpoint's files as they are."""
    in_checkpoint = source is not None and source.resolve() == directory.resolve()
    if not in_checkpoint:
        config = copy.deepcopy(model.config)
        config.architectures = [type(model).__name__]
        config.save_pretrained(directory)
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)
    elif source is not None and not in_checkpoint:
        for name in TOKENIZER_FILES:
            if (source / name).is_file():
                shutil.copy2(source / name, directory / name)
        if (source / "additional_chat_templates").is_dir():
            shutil.copytree(source / "additional_chat_templates", directory / "additional_chat_templates",
                            dirs_exist_ok=True)


# -- tracing and translating ------------------------------------------------------------------------------
def _trace(wrapper: ExportWrapper, args: tuple, shapes: dict, format: str) -> torch.export.ExportedProgram:
    kwargs = dict(zip(INPUT_NAMES, args, strict=True))
    try:
        with torch.no_grad(), _failure_dump_kept_back():
            return torch.export.export(wrapper, (), kwargs, dynamic_shapes=shapes, strict=False)
    except ConvBertError:
        raise
    except Exception as exc:  # any tracing failure is reported with the model's blocks
        raise _not_expressible(wrapper.model, format, exc, "trace") from exc


@contextlib.contextmanager
def _failure_dump_kept_back() -> Iterator[None]:
    """A failing ``torch.export`` prints its partial graph (hundreds of lines) to stderr and warns about
    unbacked symbols; both go to this module's debug log instead, so the error reads as one line. On success
    whatever was printed is passed on."""
    noisy = logging.getLogger("torch.fx.experimental.symbolic_shapes")
    level = noisy.level
    noisy.setLevel(logging.ERROR)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stderr(printed):
            yield
    except BaseException:
        logger.debug("torch.export printed while failing:\n%s", printed.getvalue())
        raise
    else:
        sys.stderr.write(printed.getvalue())
    finally:
        noisy.setLevel(level)


def _require_onnx() -> None:
    missing = []
    for name in ("onnx", "onnxscript"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ExportDependencyError(f"--format onnx needs {' and '.join(missing)}: pip install onnx "
                                    "onnxscript onnxruntime (or pip install 'convbert[export]')")


def _to_onnx(program: torch.export.ExportedProgram, path: Path, opset: int, output_names: list[str],
             wrapper: ExportWrapper, shapes: dict) -> None:
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")  # "no torchvision"
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*axis name.*", category=UserWarning)
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            onnx_program = torch.onnx.export(program, (), dynamo=True, opset_version=opset, verbose=False,
                                             input_names=list(INPUT_NAMES), output_names=output_names)
    except ConvBertError:
        raise
    except Exception as exc:
        raise _not_expressible(wrapper.model, "onnx", exc, "translate") from exc
    finally:
        registration.setLevel(level)
    onnx_program.rename_axes(_axis_names(onnx_program, shapes))
    onnx_program.save(str(path))


def _axis_names(onnx_program: Any, shapes: dict) -> dict[Any, str]:
    """The traced symbols (``s18``) -> the ``Dim`` names (``batch``), which ONNX Runtime users read."""
    names = {}
    for value in onnx_program.model.graph.inputs:
        for axis, dim in shapes.get(value.name, {}).items():
            symbol = value.shape[axis]
            if isinstance(getattr(symbol, "value", None), str):
                names[symbol] = dim.__name__
    return names


def _not_expressible(model: nn.Module, format: str, exc: BaseException, stage: str) -> NotExpressibleError:
    """The error for a failed export: where (the innermost block on the failing stack), what, the fix."""
    where = _failing_block(model, exc)
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    cause = f"{type(exc).__name__}: {first[:300]}"
    kind = type(model).__name__
    fmt = "ONNX" if format == "onnx" else "torch.export"
    if stage == "trace":
        fix = ("both formats trace with torch.export, so the other one fails the same way: make that block's "
               "forward traceable (no Python branch on a tensor's value, no .item()/.tolist()/nonzero(); use "
               "torch.where or torch.cond), or swap it for a registered block that is (convbert-blocks lists "
               "them; e.g. mixer span_conv, dynamic_conv, self_attention)")
    else:
        fix = ("export with --format torch-export (it keeps every PyTorch op), or swap that block for one "
               "whose ops ONNX has, or try another --opset")
    located = f" in {where}" if where else ""
    return NotExpressibleError(
        f"cannot export {kind} to {fmt}: the exporter failed{located} ({cause}). The model's blocks: "
        f"{describe_blocks(model)}. Fix: {fix}."
    )


def describe_blocks(model: nn.Module) -> str:
    """``embeddings=bert, layers.*=transformer, layers.*.mixer=mixed, ...``: each block, once per layer."""
    seen: dict[str, str] = {}
    for name, module in model.named_modules():
        block = getattr(module, "block_name", None)
        if block is not None:
            seen.setdefault(re.sub(r"(^|\.)layers\.\d+(?=\.|$)", r"\1layers.*", name), block)
    return ", ".join(f"{where}={block}" for where, block in seen.items()) or type(model).__name__


def _failing_block(model: nn.Module, exc: BaseException) -> str | None:
    """``layers.0.mixer.parts.1 (mixer 'value_clip' from dist)``: the innermost block whose forward is on the
    stack of ``exc`` (or of its causes); None when the failure happened outside the model's code."""
    names = {id(m): n for n, m in model.named_modules() if getattr(m, "block_name", None) is not None}
    found = None
    for error in _chain(exc):
        tb = error.__traceback__
        while tb is not None:
            owner = tb.tb_frame.f_locals.get("self")
            if id(owner) in names:
                found = owner
            tb = tb.tb_next
        if found is not None:
            break
    if found is None:
        return None
    return f"{names[id(found)]} (block {found.block_name!r}{_provider(model, found.block_name)})"


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _provider(model: nn.Module, block: str) -> str:
    base = getattr(model, "base_model", model)
    registry = getattr(getattr(base, "build_context", None), "registry", None)
    for specs in getattr(registry, "specs", {}).values():
        spec = specs.get(block)
        if spec is not None:
            return f", provided by {spec.distribution or spec.provider}"
    return ""


# -- checking ---------------------------------------------------------------------------------------------
def run_exported(path: str | Path, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 token_type_ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run an exported file (``.onnx`` with onnxruntime on the CPU, ``.pt2`` with torch.export.load)."""
    path = Path(path)
    inputs = dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
    if path.suffix == ".pt2":
        with torch.no_grad():
            return dict(torch.export.load(path).module()(**inputs))
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {k: v.cpu().numpy() for k, v in inputs.items()})
    return {o.name: torch.from_numpy(v) for o, v in zip(session.get_outputs(), outputs, strict=True)}


def check_export(path: Path, wrapper: ExportWrapper) -> None:
    """Compare the export with eager PyTorch on a batch of another size and length, with padding."""
    if path.suffix == ".onnx":
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            logger.warning("onnxruntime is not installed: %s was not checked against PyTorch", path)
            return
    model = wrapper.model
    args = example_inputs(model, batch=3, length=13, seed=1)
    with torch.no_grad():
        expected = wrapper(*args)
    got = run_exported(path, *args)
    tolerance = 1e-3 if model.dtype == torch.float32 else 5e-2
    for name, want in expected.items():
        have = got[name].to(want.device, want.dtype)
        if have.shape != want.shape or not torch.allclose(have, want, atol=tolerance, rtol=tolerance):
            diff = (have - want).abs().max().item() if have.shape == want.shape else "a shape mismatch"
            raise NotExpressibleError(
                f"the exported {path.name} does not compute what {type(model).__name__} computes on a batch "
                f"of another shape: {name} differs by {diff}. The model's blocks: {describe_blocks(model)}. "
                "A block may depend on the traced shapes (Python ints from tensor sizes baked in the graph): "
                "try the other format or report it"
            )
