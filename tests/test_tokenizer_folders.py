"""Tokenizer folders as transformers 5 writes them (tokenizer.json and tokenizer_config.json, no vocab.txt;
model_max_length 1e30 when no length was given) load in both of our tokenizers and encode as transformers."""

from __future__ import annotations

import json

import pytest

from convbert import ConvBertTokenizer, ConvBertTokenizerFast

TEXTS = ["Hello, World! A naïve café.", "ConvBERT mixes attention and span-based dynamic convolution."]
PAIRS = ["a short pair", "another one, a little longer than the first"]


@pytest.fixture(scope="module")
def transformers_folder(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    ours = tmp_path_factory.mktemp("ours")
    ConvBertTokenizerFast().save_pretrained(ours)
    theirs = transformers.ConvBertTokenizerFast.from_pretrained(ours, model_max_length=int(1e30))
    folder = tmp_path_factory.mktemp("transformers5")
    theirs.save_pretrained(folder)
    return folder, theirs


@pytest.mark.parametrize("cls", [ConvBertTokenizer, ConvBertTokenizerFast])
def test_a_folder_without_vocab_txt_loads_and_encodes_as_transformers(transformers_folder, cls):
    folder, theirs = transformers_folder
    if (folder / "vocab.txt").exists():
        (folder / "vocab.txt").unlink()  # as transformers 5 writes it: tokenizer.json only
    ours = cls.from_pretrained(folder)
    assert ours(TEXTS, PAIRS)["input_ids"] == theirs(TEXTS, PAIRS)["input_ids"]
    assert ours(TEXTS, PAIRS)["token_type_ids"] == theirs(TEXTS, PAIRS)["token_type_ids"]


@pytest.mark.parametrize("cls", [ConvBertTokenizer, ConvBertTokenizerFast])
def test_model_max_length_1e30_means_no_truncation_not_an_overflow(transformers_folder, cls):
    folder, theirs = transformers_folder
    assert json.loads((folder / "tokenizer_config.json").read_text())["model_max_length"] >= 1e30
    ours = cls.from_pretrained(folder)
    long = " ".join(["word"] * 700)
    ids = ours(long, truncation=True)["input_ids"]
    assert ids == theirs(long, truncation=True)["input_ids"] and len(ids) == 702
    assert len(ours(long, truncation=True, max_length=16)["input_ids"]) == 16
