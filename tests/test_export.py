"""Export to ONNX and torch.export: every task class, dynamic batch / sequence / choice axes, padded batches.

Each exported file is run (ONNX Runtime on the CPU; ``torch.export.load``) on padded batches of other sizes
and lengths than the export traced, and compared with eager PyTorch. Exports are shared per module.
ONNX tests skip where onnx / onnxscript / onnxruntime are not installed (the ``export`` extra).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from conftest import tiny_config_kwargs

import convbert
from convbert.cli.export import main
from convbert.errors import ConfigError, NotExpressibleError
from convbert.export import export_model

CLASSES = [convbert.ConvBertModel, convbert.ConvBertForMaskedLM, convbert.ConvBertForSequenceClassification,
           convbert.ConvBertForTokenClassification, convbert.ConvBertForQuestionAnswering,
           convbert.ConvBertForMultipleChoice]
FORMATS = ["onnx", "torch-export"]
# each class with the padding-masked convolution in both formats; the reference convolution (the default, for
# parity with released weights) once, in ONNX
CASES = [(cls, True, f) for cls in CLASSES for f in FORMATS] + [(convbert.ConvBertModel, False, "onnx")]
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog", "ran",
         "far", "away", "today", "."]


def needs(format: str) -> None:
    if format == "onnx":
        for package in ("onnx", "onnxscript", "onnxruntime"):
            pytest.importorskip(package)


def tiny(cls, mask_padding: bool = True):
    torch.manual_seed(0)
    config = tiny_config_kwargs(conv_mask_padding=mask_padding, num_hidden_layers=1)  # layers are alike
    model = cls(convbert.ConvBertConfig(**config)).eval()
    with torch.no_grad():  # a trained model's pad embedding is not zero: padding must really be masked
        model.get_input_embeddings().weight[0].normal_()
    return model


def padded_batch(batch: int, length: int, choices: int | None = None, seed: int = 0):
    """Right-padded rows of mixed lengths (one a single token), two segments, int64 as a tokenizer gives."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, length + 1, (batch * (choices or 1),), generator=g)
    lengths[0], lengths[-1] = length, 1
    shape = (batch, choices, length) if choices else (batch, length)
    mask = (torch.arange(length) < lengths[:, None]).long().view(shape)
    ids = torch.randint(5, 97, shape, generator=g) * mask
    types = (torch.arange(length) >= length // 2).long().expand(shape) * mask
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def eager_outputs(model, inputs) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        out = model(**inputs)
    if isinstance(model, convbert.ConvBertModel):
        return {"last_hidden_state": out.last_hidden_state}
    if isinstance(model, convbert.ConvBertForQuestionAnswering):
        return {"start_logits": out.start_logits, "end_logits": out.end_logits}
    return {"logits": out.logits}


def load_onnx(path: Path):
    """An ONNX Runtime session on the CPU, as a function of the tokenizer's tensors."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(inputs) -> dict[str, torch.Tensor]:
        outputs = session.run(None, {name: t.numpy() for name, t in inputs.items()})
        return {o.name: torch.from_numpy(v) for o, v in zip(session.get_outputs(), outputs, strict=True)}

    return run


def load_program(path: Path):
    """The saved torch.export program as a module: ``module(**inputs)`` gives ``{name: tensor}``."""
    module = torch.export.load(path).module()

    def run(inputs) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return module(**inputs)

    return run


def load(path: Path):
    return load_onnx(path) if path.suffix == ".onnx" else load_program(path)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(class, mask_padding, format) -> (model, exported file), each exported once for the module."""
    cache: dict = {}

    def get(cls, mask_padding: bool, format: str):
        key = (cls, mask_padding, format)
        if key not in cache:
            model = tiny(cls, mask_padding)
            out = tmp_path_factory.mktemp(f"{cls.__name__}-{mask_padding}-{format}")
            cache[key] = model, export_model(model, out, format=format, check=False)  # the tests check
        return cache[key]

    return get


@pytest.mark.parametrize(("cls", "mask_padding", "format"), CASES,
                         ids=[f"{c.__name__}-{'masked' if m else 'reference'}-{f}" for c, m, f in CASES])
def test_export_matches_eager_on_padded_batches_of_other_shapes(exported, cls, mask_padding, format):
    """Traced at batch 2, length 8 (3 choices); run at other batch sizes, lengths and choice counts."""
    needs(format)
    model, path = exported(cls, mask_padding, format)
    assert path.suffix == {"onnx": ".onnx", "torch-export": ".pt2"}[format]
    choices = cls is convbert.ConvBertForMultipleChoice
    run = load(path)
    for batch, length, seed in ((5, 23, 1), (1, 40, 2), (3, 1, 3)):
        inputs = padded_batch(batch, length, 2 if choices else None, seed)
        want = eager_outputs(model, inputs)
        got = run(inputs)
        assert list(got) == list(want)  # transformers' ONNX output names, in order
        for name in want:
            assert got[name].shape == want[name].shape, name
            assert torch.allclose(got[name], want[name], atol=1e-4, rtol=0), (name, batch, length)


@pytest.mark.parametrize("format", FORMATS)
def test_masked_convolution_stays_batch_invariant_when_exported(exported, format):
    """With conv_mask_padding a sentence's exported outputs do not depend on the padding of its batch."""
    needs(format)
    _, path = exported(convbert.ConvBertModel, True, format)
    batch = padded_batch(4, 30, seed=4)
    row = 1
    length = int(batch["attention_mask"][row].sum())
    alone = {k: v[row : row + 1, :length] for k, v in batch.items()}
    run = load(path)
    padded = run(batch)["last_hidden_state"][row, :length]
    assert torch.allclose(run(alone)["last_hidden_state"][0], padded, atol=1e-5)


def test_onnx_file_declares_named_dynamic_axes(exported):
    needs("onnx")
    import onnx

    _, path = exported(convbert.ConvBertForMultipleChoice, True, "onnx")
    graph = onnx.load(path).graph

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert [i.name for i in graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert all(dims(i) == ["batch", "choice", "sequence"] for i in graph.input)
    assert [(o.name, dims(o)) for o in graph.output] == [("logits", ["batch", "choice"])]


def saved_checkpoint(directory: Path) -> Path:
    """A tiny fine-tuned-looking checkpoint directory with its tokenizer, as save_pretrained writes it."""
    model = tiny(convbert.ConvBertForSequenceClassification)
    model.save_pretrained(directory)
    (directory / "vocab.txt").write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    convbert.ConvBertTokenizer(vocab_file=directory / "vocab.txt").save_pretrained(directory)
    return directory


def test_cli_exports_a_checkpoint_directory_usable_on_its_own(tmp_path, capsys):
    """convbert-export checkpoint exported --format onnx --opset 20: model, config and tokenizer together."""
    needs("onnx")
    import onnx

    checkpoint = saved_checkpoint(tmp_path / "checkpoint")
    main([str(checkpoint), str(tmp_path / "exported"), "--format", "onnx", "--opset", "20"])
    assert "wrote" in capsys.readouterr().out
    exported = tmp_path / "exported"
    assert {"model.onnx", "config.json", "vocab.txt", "tokenizer_config.json"} <= {p.name for p in
                                                                                    exported.iterdir()}
    assert {o.domain: o.version for o in onnx.load(exported / "model.onnx").opset_import}[""] == 20
    config = convbert.ConvBertConfig.from_pretrained(exported)
    assert config.architectures == ["ConvBertForSequenceClassification"]

    tokenizer = convbert.ConvBertTokenizer.from_pretrained(exported)
    inputs = tokenizer(["the cat sat on the mat .", "a dog ran"], padding=True, return_tensors="pt")
    inputs = {k: inputs[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    model = convbert.ConvBertForSequenceClassification.from_pretrained(checkpoint)
    want = eager_outputs(model, inputs)["logits"]
    assert torch.allclose(load_onnx(exported / "model.onnx")(inputs)["logits"], want, atol=1e-4)


def test_a_directory_exports_to_a_pt2_file_as_the_task_asked(tmp_path):
    checkpoint = saved_checkpoint(tmp_path / "checkpoint")
    path = export_model(checkpoint, tmp_path / "out" / "encoder.pt2", format="torch-export",
                        task="feature-extraction")
    assert path == tmp_path / "out" / "encoder.pt2"
    assert convbert.ConvBertConfig.from_pretrained(path.parent).architectures == ["ConvBertModel"]
    inputs = padded_batch(2, 11, seed=5)
    want = eager_outputs(convbert.ConvBertModel.from_pretrained(checkpoint), inputs)
    got = load_program(path)(inputs)["last_hidden_state"]
    assert torch.allclose(got, want["last_hidden_state"], atol=1e-4)


@pytest.mark.parametrize(("argv", "message"), [
    (["{tmp}/missing", "{tmp}/out"], "is not a directory"),
    (["{tmp}/checkpoint", "{tmp}/out.onnx", "--format", "torch-export"], "writes a .pt2 file"),
    (["{tmp}/checkpoint", "{tmp}/out", "--format", "tflite"], "invalid choice: 'tflite'"),
    (["{tmp}/checkpoint", "{tmp}/out", "--format", "torch-export", "--opset", "18"], "onnx only"),
])
def test_cli_reports_a_bad_input_in_one_line_with_status_2(tmp_path, capsys, argv, message):
    saved_checkpoint(tmp_path / "checkpoint")
    with pytest.raises(SystemExit) as info:
        main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.startswith(("usage:", "convbert-export: error:"))
    assert "convbert-export: error: " in err and message in err and "Traceback" not in err


@dataclass
class ClipParams:
    num_heads: int | None = None
    head_size: int | None = None


class ClipIfLarge(torch.nn.Module):
    """A plugin mixer with a Python branch on a tensor's value: no graph can hold it."""

    def __init__(self, params: ClipParams, ctx) -> None:
        super().__init__()
        self.output_size = ctx.hidden_size
        self.value = torch.nn.Linear(ctx.hidden_size, ctx.hidden_size)

    def forward(self, hidden, mask, output_attentions=False, shared=None):
        if hidden.abs().max() > 100:
            hidden = hidden.clamp(-100, 100)
        return self.value(hidden), None


@pytest.mark.parametrize("format", FORMATS)
def test_a_block_the_exporter_cannot_trace_is_named_with_the_fix(fresh_registry, tmp_path, format):
    needs(format)
    fresh_registry.register("mixer", "clip_if_large", ClipIfLarge, ClipParams)
    composition = convbert.ConvBertConfig(**tiny_config_kwargs()).to_composition("sequence_classification")
    composition["layer"]["mixer"]["parts"][1] = {"name": "clip_if_large"}
    model = convbert.build_model(composition, registry=fresh_registry).eval()
    with pytest.raises(NotExpressibleError) as info:
        export_model(model, tmp_path, format=format)
    message = str(info.value)
    assert "in convbert.layers.0.mixer.parts.1 (block 'clip_if_large'" in message
    assert "convbert.layers.*.mixer.parts.0=self_attention" in message  # the model's blocks
    assert "torch.where" in message and "swap it" in message
    assert not list(tmp_path.iterdir())


def test_an_op_onnx_cannot_translate_points_to_torch_export(monkeypatch, tmp_path):
    needs("onnx")

    def unsupported(*args, **kwargs):
        raise torch.onnx.errors.OnnxExporterError("Unsupported FX nodes: {'aten.some_op.default'}")

    monkeypatch.setattr(torch.onnx, "export", unsupported)
    with pytest.raises(NotExpressibleError, match="--format torch-export") as info:
        export_model(tiny(convbert.ConvBertModel), tmp_path, format="onnx")
    assert "aten.some_op" in str(info.value) and "embeddings=bert" in str(info.value)


def test_wrong_arguments_are_config_errors(tmp_path):
    model = tiny(convbert.ConvBertModel)
    with pytest.raises(ConfigError, match="unknown export format 'tflite'"):
        export_model(model, tmp_path, format="tflite")
    with pytest.raises(ConfigError, match="opset 12 is not supported"):
        export_model(model, tmp_path, format="onnx", opset=12)
    with pytest.raises(ConfigError, match="unknown task 'summarization'"):
        export_model(saved_checkpoint(tmp_path / "checkpoint"), tmp_path / "out", task="summarization")
