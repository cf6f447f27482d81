"""Sentence pairs in sequence classification (encoded as Hugging Face encodes them) and GLUE's official
metrics, checked against scikit-learn and scipy."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convbert.errors import ConfigError, DataError
from convbert.train import metrics
from convbert.train.cli import compose_config
from convbert.train.job import run


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=1, max_size=60))
def test_matthews_correlation_is_scikit_learns(pairs):
    sklearn = pytest.importorskip("sklearn.metrics")
    predictions, labels = zip(*pairs, strict=True)
    assert metrics.matthews_correlation(predictions, labels) == pytest.approx(
        sklearn.matthews_corrcoef(labels, predictions), abs=1e-12)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=1, max_size=60))
def test_f1_is_scikit_learns(pairs):
    sklearn = pytest.importorskip("sklearn.metrics")
    predictions, labels = zip(*pairs, strict=True)
    assert metrics.f1_binary(predictions, labels) == pytest.approx(
        sklearn.f1_score(labels, predictions, zero_division=0.0), abs=1e-12)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(-3, 3), st.floats(-5, 5, allow_nan=False)), min_size=3, max_size=40))
def test_pearson_and_spearman_are_scipys(pairs):
    stats = pytest.importorskip("scipy.stats")
    x, y = (list(map(float, v)) for v in zip(*pairs, strict=True))
    if len(set(x)) < 2 or len(set(y)) < 2:
        assert math.isnan(metrics.pearson(x, y))
        return
    assert metrics.pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-9)
    assert metrics.spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-9)


PAIRS = [("a man is playing a guitar", "a man plays music", 1), ("the cat sleeps", "a dog is running", 0),
         ("two kids eat pizza in the park", "children are eating", 1), ("it rains", "the sun is out", 0)]


@pytest.fixture
def pair_files(tmp_path):
    rows = [{"premise": a, "hypothesis": b, "label": y} for a, b, y in PAIRS * 6]
    for name in ("train", "dev"):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def test_pairs_are_encoded_as_transformers_encodes_them(pair_files):
    from transformers import BertTokenizerFast

    from convbert.tokenization_fast import ConvBertTokenizerFast
    from convbert.train.schema import TextDataConfig
    from convbert.train.tasks.sequence_classification import (
        SequenceClassification,
        SequenceClassificationConfig,
    )

    ours = ConvBertTokenizerFast()
    ours.save_pretrained(pair_files / "tokenizer")
    theirs = BertTokenizerFast.from_pretrained(pair_files / "tokenizer")
    config = SequenceClassificationConfig(head={"name": "sequence_classification", "num_labels": 2})
    task = SequenceClassification(config, ours)
    data = TextDataConfig(train_file=str(pair_files / "train.jsonl"), dev_file=str(pair_files / "dev.jsonl"),
                          text_fields=["premise", "hypothesis"], max_length=9)
    train, _ = task.features(data)
    expected = theirs([a for a, _, _ in PAIRS], [b for _, b, _ in PAIRS], truncation="longest_first",
                      max_length=9)
    for feature, ids, types in zip(train, expected["input_ids"], expected["token_type_ids"], strict=False):
        assert feature["input_ids"] == ids and feature["token_type_ids"] == types
    assert any(1 in f["token_type_ids"] for f in train)


def test_a_pair_task_trains_from_the_command_line_and_reports_glue_metrics(tmp_path, pair_files):
    overrides = ["pretrain=none", f"data.train_file={pair_files / 'train.jsonl'}",
                 f"data.dev_file={pair_files / 'dev.jsonl'}", "data.text_fields=[premise,hypothesis]",
                 "model.num_layers=1", "model.hidden_size=32", "model.num_heads=2",
                 "model.intermediate_size=64", "model.embedding_size=16", "trainer.max_steps=2",
                 "trainer.batch_size=4",
                 "trainer.progress=false", "tokenizer=bert-base-uncased", "model.embedding.vocab_size=30522"]
    run(compose_config(overrides), tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    dev = summary["stages"][-1]["dev"]
    assert {"accuracy", "f1", "matthews_correlation"} <= set(dev)


def test_pair_mistakes_name_the_field_and_the_fix(tmp_path, pair_files):
    from convbert.train.job import plan_run

    with pytest.raises(ConfigError, match=r"data.text_fields.*sentence pair"):
        plan_run(compose_config(["data.text_fields=[a,b,c]"]))
    overrides = ["pretrain=none", f"data.train_file={pair_files / 'train.jsonl'}",
                 f"data.dev_file={pair_files / 'dev.jsonl'}", "data.text_fields=[premise,question]",
                 "trainer.max_steps=1", "trainer.progress=false"]
    with pytest.raises(DataError, match=r"train.jsonl:1: missing \['question'\].*data.text_fields"):
        run(compose_config(overrides), tmp_path / "run")
