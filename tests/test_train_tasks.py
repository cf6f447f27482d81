"""A few steps of every objective on tiny models and small subsets of the shipped data, in process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from convbert import (
    ConvBertConfig,
    ConvBertForMaskedLM,
    ConvBertForMultipleChoice,
    ConvBertForQuestionAnswering,
    ConvBertForSequenceClassification,
    ConvBertForTokenClassification,
    ConvBertModel,
)
from convbert.train.cli import compose_config
from convbert.train.job import run

TINY = ["model.num_layers=1", "model.hidden_size=32", "model.num_heads=2", "model.intermediate_size=64",
        "model.embedding_size=16", "trainer.max_steps=3", "trainer.batch_size=4",
        "trainer.eval_batch_size=16", "trainer.progress=false", "data.max_examples=16",
        "data.max_dev_examples=12"]
PRETRAIN = ["pretrain=none", "data.max_length=32"]


def train(run_dir: Path, overrides: list[str]) -> dict:
    metric = run(compose_config([*TINY, *overrides]), run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["dev_metric"] == metric
    return summary


def assert_run_directory(run_dir: Path) -> None:
    for name in ("config.yaml", "metrics.jsonl", "loss.png", "summary.json", "model/config.json",
                 "model/vocab.txt", "tokenizer/vocab.txt"):
        assert (run_dir / name).is_file(), name
    # weights under transformers' name only where transformers can load the model exactly
    portable = ConvBertConfig.from_pretrained(run_dir / "model").hf_compatible
    assert (run_dir / "model" / ("model.safetensors" if portable else "convbert_model.safetensors")).is_file()
    assert (run_dir / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pickles = [p for p in run_dir.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".pickle")]
    assert not pickles, f"nothing is pickled: {pickles}"


def test_masked_lm_pretraining(tmp_path):
    summary = train(tmp_path, ["task=pretrain_mlm", *PRETRAIN])
    assert_run_directory(tmp_path)
    stage = summary["stages"][0]
    assert stage["steps"] == 3 and stage["metric"] == "loss" and stage["dev"]["loss"] > 0
    model = ConvBertForMaskedLM.from_pretrained(tmp_path / "model")
    ids = torch.tensor([[2, 10, 11, 3]])
    assert model(ids).logits.shape == (1, 4, 8192)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if r["split"] == "train"] == [3]
    assert lines[-1]["split"] == "dev" and "mlm_accuracy" in lines[-1]


def test_replaced_token_detection_pretraining(tmp_path):
    summary = train(tmp_path, ["task=pretrain_rtd", *PRETRAIN, "trainer.log_every=1"])
    assert_run_directory(tmp_path)
    stage = summary["stages"][0]
    assert {"generator_loss", "discriminator_loss", "discriminator_accuracy"} <= set(stage["dev"])
    train_logs = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()][:3]
    for r in train_logs:  # loss = generator loss + 50 * discriminator loss
        assert r["loss"] == pytest.approx(r["generator_loss"] + 50 * r["discriminator_loss"], rel=1e-5)
    assert isinstance(ConvBertModel.from_pretrained(tmp_path / "model"), ConvBertModel)
    generator = ConvBertForMaskedLM.from_pretrained(tmp_path / "generator")
    assert generator.config.hidden_size == 8  # a quarter of the discriminator's 32


@pytest.mark.parametrize(("task", "cls", "metric", "extra"), [
    ("sentiment", ConvBertForSequenceClassification, "accuracy", []),
    ("token_classification", ConvBertForTokenClassification, "f1", []),
    ("question_answering", ConvBertForQuestionAnswering, "f1", ["data.max_length=128"]),
    ("multiple_choice", ConvBertForMultipleChoice, "accuracy", ["data.max_length=48"]),
])
def test_fine_tuning(tmp_path, task, cls, metric, extra):
    summary = train(tmp_path, [f"task={task}", "pretrain=none", *extra])
    assert_run_directory(tmp_path)
    assert summary["metric"] == metric and 0.0 <= summary["dev_metric"] <= 1.0
    assert summary["stages"][0]["dev_examples"] == 12
    model = cls.from_pretrained(tmp_path / "model")
    assert type(model) is cls


def test_sentiment_prints_accuracy_beside_the_majority_baseline(tmp_path, capsys):
    summary = train(tmp_path, ["pretrain=none"])
    printed = capsys.readouterr().out
    assert "dev accuracy:" in printed and "majority_accuracy" in printed
    assert 0.0 < summary["baseline"]["majority_accuracy"] < 1.0


def test_pretrain_then_fine_tune_starts_from_the_pretrained_encoder(tmp_path):
    summary = train(tmp_path, ["pretrain.trainer.max_steps=2", "pretrain.trainer.batch_size=4",
                               "pretrain.trainer.progress=false", "pretrain.data.max_examples=8",
                               "pretrain.data.max_dev_examples=4", "pretrain.data.max_length=32",
                               "trainer.learning_rate=1e-9", "trainer.max_steps=1"])
    assert [s["stage"] for s in summary["stages"]] == ["pretrain", "task"]
    encoder = ConvBertModel.from_pretrained(tmp_path / "pretrain" / "model")
    tuned = ConvBertForSequenceClassification.from_pretrained(tmp_path / "model")
    torch.testing.assert_close(tuned.convbert.embeddings.word.weight, encoder.embeddings.word.weight,
                               atol=1e-6, rtol=0)  # one step at lr 1e-9 barely moves it


def test_masked_lm_pretraining_then_fine_tuning_keeps_only_the_encoder(tmp_path):
    summary = train(tmp_path, ["pretrain=mlm", "pretrain.trainer.max_steps=2",
                               "pretrain.trainer.batch_size=4",
                               "pretrain.trainer.progress=false", "pretrain.data.max_examples=8",
                               "pretrain.data.max_dev_examples=4", "trainer.max_steps=1"])
    assert [s["task"] for s in summary["stages"]] == ["pretrain_mlm", "sequence_classification"]
    pretrained = ConvBertForMaskedLM.from_pretrained(tmp_path / "pretrain" / "model")
    assert isinstance(pretrained, ConvBertForMaskedLM)


def test_fine_tune_a_hugging_face_checkpoint(tmp_path):
    transformers = pytest.importorskip("transformers")
    hf_config = transformers.ConvBertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1,
                                            num_attention_heads=2, intermediate_size=64, embedding_size=16,
                                            max_position_embeddings=64, pad_token_id=0)
    torch.manual_seed(0)
    transformers.ConvBertModel(hf_config).save_pretrained(tmp_path / "hf")
    summary = train(tmp_path / "run", ["pretrain=none", f"init_from={tmp_path / 'hf'}", "trainer.max_steps=1",
                                       "trainer.learning_rate=1e-9", "data.max_length=32"])
    assert summary["model_source"] == f"init_from={tmp_path / 'hf'}"
    assert summary["tokenizer"].startswith("bert-base-uncased")
    hf = transformers.ConvBertModel.from_pretrained(tmp_path / "hf")
    ours = ConvBertForSequenceClassification.from_pretrained(tmp_path / "run" / "model")
    torch.testing.assert_close(ours.convbert.embeddings.word.weight, hf.embeddings.word_embeddings.weight,
                               atol=1e-6, rtol=0)


def test_bf16_autocast_trains_on_cpu(tmp_path):
    summary = train(tmp_path, ["task=pretrain_mlm", *PRETRAIN, "trainer.precision=bf16",
                               "trainer.max_steps=2"])
    assert summary["stages"][0]["steps"] == 2
    assert torch.isfinite(torch.tensor(summary["stages"][0]["train"]["loss"]))


def test_compile_compiles_the_model_in_place(tmp_path, monkeypatch):
    compiled = []
    monkeypatch.setattr(torch.nn.Module, "compile",
                        lambda self, *a, **k: compiled.append(type(self).__name__))
    train(tmp_path, ["task=pretrain_rtd", *PRETRAIN, "trainer.compile=true", "trainer.max_steps=1"])
    assert compiled == ["ConvBertForMaskedLM", "ConvBertModel", "ReplacedTokenDetectionHead"]
