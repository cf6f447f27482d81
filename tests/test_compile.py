"""``torch.compile`` sees the encoder as one graph, and the compiled model computes what eager computes.

Set CONVBERT_SKIP_COMPILE=1 to skip (e.g. where TorchDynamo is unsupported); the inductor test needs a C++
compiler and takes about ten seconds on two cores.
"""

from __future__ import annotations

import shutil

import pytest
import torch
from conftest import tiny_config_kwargs

import convbert
import convbert.settings
from convbert.kernels.sequence_mask import SequenceMask

dynamo = pytest.importorskip("torch._dynamo")
pytestmark = pytest.mark.skipif(
    convbert.settings.skip_compile() or not dynamo.is_dynamo_supported(),
    reason="torch.compile unavailable or disabled (CONVBERT_SKIP_COMPILE=1)",
)


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    dynamo.reset()
    yield
    dynamo.reset()


def _model(cls=convbert.ConvBertModel, **overrides):
    torch.manual_seed(0)
    return cls(convbert.ConvBertConfig(**tiny_config_kwargs(**overrides)))


@pytest.mark.parametrize("training", [False, True])
def test_encoder_layers_have_no_graph_breaks(batch, training):
    ids, mask, _ = batch
    model = _model().train(training)
    hidden = model.embeddings(ids)
    sequence_mask = SequenceMask.from_attention_mask(mask, hidden.dtype)
    for layer in model.layers:
        explained = dynamo.explain(layer)(hidden, sequence_mask)
        assert explained.graph_break_count == 0, explained.break_reasons
        assert explained.graph_count == 1
    explained = dynamo.explain(model)(input_ids=ids, attention_mask=mask)
    assert explained.graph_break_count == 0, explained.break_reasons


def test_compiled_model_matches_eager_forward_and_backward(batch):
    """fullgraph=True through AOTAutograd (no code generation: fast), with the padding mask and labels."""
    ids, mask, types = batch
    model = _model(convbert.ConvBertForMaskedLM, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    labels = torch.where(ids % 3 == 0, ids, -100)
    args = dict(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels)
    eager = model(**args)
    eager.loss.backward()
    eager_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")(**args)
    compiled.loss.backward()
    assert torch.allclose(compiled.logits, eager.logits, atol=1e-5)
    assert torch.allclose(compiled.loss, eager.loss, atol=1e-6)
    for name, p in model.named_parameters():
        assert torch.allclose(p.grad, eager_grads[name], atol=1e-5), name


@pytest.mark.skipif(not (shutil.which("c++") or shutil.which("g++")), reason="inductor needs a C++ compiler")
def test_inductor_compiles_the_encoder_in_one_graph(batch):
    ids, mask, _ = batch
    model = _model(num_hidden_layers=1).eval()
    with torch.no_grad():
        eager = model(input_ids=ids, attention_mask=mask).last_hidden_state
        compiled = torch.compile(model, fullgraph=True)(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.allclose(compiled, eager, atol=1e-5)


@pytest.mark.skipif(not (shutil.which("c++") or shutil.which("g++")), reason="inductor needs a C++ compiler")
def test_compile_for_inference_freezes_the_weights_for_that_module_only():
    """Unmocked inductor with freezing: eager's outputs at two lengths from one graph; the parameters are in
    the graph as constants (changing one afterwards does not reach the compiled output), and the setting
    does not leak to other compilations of the process."""
    from torch._dynamo.utils import counters
    from torch._inductor import config as inductor_config

    from convbert.compilation import compile_for_inference

    model = _model(num_hidden_layers=1).eval()
    compiled = _model(num_hidden_layers=1).eval()
    compile_for_inference(compiled)
    counters.clear()
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for length in (9, 14):
            ids = torch.randint(1, 97, (2, length), generator=g)
            expected = model(input_ids=ids).last_hidden_state
            assert torch.allclose(compiled(input_ids=ids).last_hidden_state, expected, atol=1e-4)
        assert counters["stats"]["unique_graphs"] == 1
        frozen = compiled(input_ids=ids).last_hidden_state
        compiled.layers[0].ffn.down.weight.zero_()  # the graph holds its own (prepacked) copy
        assert torch.equal(compiled(input_ids=ids).last_hidden_state, frozen)
    assert not inductor_config.freezing


@pytest.mark.skipif(not (shutil.which("c++") or shutil.which("g++")), reason="inductor needs a C++ compiler")
def test_training_with_compile_true_compiles_for_real_without_recompiling_per_length(tmp_path, monkeypatch):
    """``trainer.compile=true``, unmocked: inductor compiles the fine-tuning model, batches of several
    lengths (group_by_length) reuse the graphs (dynamic shapes), and the run computes what eager computes."""
    import json

    from torch._dynamo.utils import counters

    from convbert.train import loop
    from convbert.train.cli import compose_config
    from convbert.train.job import run

    lengths: set[int] = set()
    collate = loop.collate

    def recording_collate(features, pad):
        batch = collate(features, pad)
        lengths.add(batch["input_ids"].shape[1])
        return batch

    monkeypatch.setattr(loop, "collate", recording_collate)
    tiny = ["model.num_layers=1", "model.hidden_size=32", "model.num_heads=2", "model.intermediate_size=64",
            "model.embedding_size=16", "trainer.max_steps=6", "trainer.batch_size=4",
            "trainer.progress=false", "trainer.group_by_length=true", "trainer.eval_batch_size=16",
            "data.max_examples=24", "data.max_dev_examples=8", "pretrain=none", "data.max_length=48",
            "trainer.log_every=1", "trainer.warmup_steps=0",
            # no dropout: inductor's random masks are not the eager path's
            "model.dropout=0.0", "task.head.dropout=0.0"]
    summaries = {}
    for compiled in (False, True):
        dynamo.reset()
        counters.clear()
        lengths.clear()
        directory = tmp_path / f"compile-{compiled}"
        run(compose_config([*tiny, f"trainer.compile={str(compiled).lower()}"]), directory)
        summaries[compiled] = json.loads((directory / "summary.json").read_text())["stages"][-1]
        graphs = counters["stats"]["unique_graphs"]
        assert len(lengths) >= 3, lengths  # the run really saw batches of different lengths
        if compiled:
            # one training graph, compiled again once when the first loss records Hugging Face's problem_type
            # in the config, and one evaluation graph (no grad): each with a symbolic length
            assert 1 <= graphs <= 3, f"{graphs} graphs for {len(lengths)} lengths: recompiled per length"
        else:
            assert graphs == 0
    eager, compiled = summaries[False], summaries[True]
    assert abs(eager["train"]["loss"] - compiled["train"]["loss"]) < 1e-3, (eager["train"], compiled["train"])
