"""The shipped datasets: counts, fixed splits, well-formed records, and loader error messages."""

from __future__ import annotations

import gzip
import hashlib
import re
from collections import Counter
from pathlib import Path

import pytest

from convbert import data
from convbert.data import SPLITS, TOKEN_LABELS
from convbert.errors import DataError

MARKUP = re.compile(
    r"\{\{|\}\}|\[\[|\]\]|<ref|</?[a-zA-Z][^>]*>|'''|''|==|\|\w|&[a-z]+;|Category:|File:|thumb\|"
)


# ------------------------------------------------------------------------------------------- sentiment
def test_sentiment_file_is_the_original_10605_lines() -> None:
    raw = data.data_path("sentiment/rotten_tomatoes.tsv").read_bytes()
    assert b"\r" not in raw and not raw.startswith(b"\xef\xbb\xbf")
    lines = raw.decode("utf-8").splitlines()
    assert len(lines) == 10605
    assert all(line.count("\t") == 2 for line in lines)
    rows = data.read_sentiment_tsv(data.data_path("sentiment/rotten_tomatoes.tsv"))
    assert [row["id"] for row in rows] == list(range(1, 10606))
    signs = Counter((row["rating"] > 0) - (row["rating"] < 0) for row in rows)
    assert signs == {1: 5242, -1: 5326, 0: 37}
    assert rows[0]["text"].startswith("The Rock is destined to be the 21st Century's new ''Conan''")


EXPECTED_SENTIMENT = {
    # split: (size, negatives, positives, sha256 prefix of the texts joined by newlines)
    "train": (8454, 4260, 4194, "01dc3e3b55e70200"),
    "dev": (1057, 533, 524, "5700a6e049a1e3eb"),
    "test": (1057, 533, 524, "8010497fd8a4b227"),
}


@pytest.mark.parametrize("split", SPLITS)
def test_sentiment_split_sizes_labels_and_stability(split: str) -> None:
    examples = data.load_sentiment(split)
    size, negatives, positives, digest = EXPECTED_SENTIMENT[split]
    assert len(examples) == size
    assert Counter(e["label"] for e in examples) == {0: negatives, 1: positives}
    assert all(set(e) == {"text", "label"} and isinstance(e["text"], str) for e in examples)
    joined = "\n".join(e["text"] for e in examples).encode()
    assert hashlib.sha256(joined).hexdigest()[:16] == digest


def test_sentiment_splits_are_disjoint_and_drop_neutral() -> None:
    texts = {split: {e["text"] for e in data.load_sentiment(split)} for split in SPLITS}
    assert not texts["train"] & texts["dev"]
    assert not texts["train"] & texts["test"]
    assert not texts["dev"] & texts["test"]
    rows = data.read_sentiment_tsv(data.data_path("sentiment/rotten_tomatoes.tsv"))
    neutral = {row["text"] for row in rows if row["rating"] == 0}
    assert len(neutral) == 37
    assert not neutral & set().union(*texts.values())
    assert sum(len(data.load_sentiment(s)) for s in SPLITS) == 10605 - 37


# ---------------------------------------------------------------------------------------------- corpus
def test_corpus_counts_and_documents() -> None:
    assert len(data.load_corpus("wikipedia")) == 4511
    assert len(data.load_corpus(["lee"])) == 300
    assert len(data.load_corpus()) == 4811
    articles = data.read_text_file(data.data_path("corpus/wikipedia.txt.gz"), paragraphs="blank_line")
    assert len(articles) == 101
    assert articles[0].startswith("Anarchism is a political philosophy")


def test_corpus_is_markup_free_prose() -> None:
    paragraphs = data.load_corpus()
    assert sum(map(len, paragraphs)) > 2_500_000
    assert [p[:80] for p in paragraphs if MARKUP.search(p)] == []
    assert all(len(p.split()) >= 10 and p == p.strip() and "\n" not in p for p in paragraphs)
    assert any("Albert Einstein" in p for p in paragraphs)


def test_pydoc_source_reads_the_standard_library() -> None:
    pytest.importorskip("pydoc_data.topics")
    paragraphs = list(data.iter_corpus("pydoc"))
    assert len(paragraphs) > 100 and len(set(paragraphs)) == len(paragraphs)


# ---------------------------------------------------------------------------------- derived datasets
def test_token_classification_is_well_formed_bio() -> None:
    sizes = {split: len(data.load_token_classification(split)) for split in SPLITS}
    assert sizes == {"train": 1600, "dev": 200, "test": 200}
    seen: set[str] = set()
    for split in SPLITS:
        for record in data.load_token_classification(split):
            tokens, tags = record["tokens"], record["tags"]
            assert len(tokens) == len(tags) == len(record["labels"]) and 8 <= len(tokens) <= 40
            assert [TOKEN_LABELS[i] for i in record["labels"]] == tags
            assert any(tag != "O" for tag in tags)
            for previous, tag, token in zip(["O", *tags], tags, tokens, strict=False):
                if tag.startswith("I-"):
                    assert previous[2:] == tag[2:]
                if tag.endswith("NUM"):
                    assert token[0].isdigit()
                if tag.endswith("CAP"):
                    assert token[0].isupper()
            key = " ".join(tokens)
            assert key not in seen
            seen.add(key)


def test_qa_answers_are_located_in_context() -> None:
    sizes = {split: len(data.load_qa(split)) for split in (*SPLITS, "smoke")}
    assert sizes == {"train": 1179, "dev": 146, "test": 136, "smoke": 5}
    contexts = {}
    for split in (*SPLITS, "smoke"):
        records = data.load_qa(split)
        contexts[split] = {r["context"] for r in records}
        assert len({r["id"] for r in records}) == len(records)
        for r in records:
            assert set(r) == {"id", "title", "context", "question", "answers"}
            answers = r["answers"]
            assert len(answers["text"]) == len(answers["answer_start"]) >= 1
            for text, start in zip(answers["text"], answers["answer_start"], strict=True):
                assert r["context"][start : start + len(text)] == text
            if split != "smoke":
                (text,), (start,) = answers["text"], answers["answer_start"]
                before, after = r["question"].split("_____")
                assert before + text + after in r["context"]
    assert not contexts["train"] & (contexts["dev"] | contexts["test"])
    assert not contexts["dev"] & contexts["test"]


def test_multiple_choice_items() -> None:
    sizes = {split: len(data.load_multiple_choice(split)) for split in (*SPLITS, "smoke")}
    assert sizes == {"train": 800, "dev": 100, "test": 100, "smoke": 3}
    labels = Counter()
    for split in SPLITS:
        for r in data.load_multiple_choice(split):
            assert len(r["choices"]) == 4 and len(set(r["choices"])) == 4
            assert 0 <= r["label"] < 4 and r["context"] and r["source"] in ("wikipedia", "lee")
            labels[r["label"]] += 1
    assert min(labels.values()) > 200  # the right answer's position is spread over all four
    smoke = data.load_multiple_choice("smoke")
    assert [len(r["choices"]) for r in smoke] == [2, 2, 2]
    assert smoke[0]["choices"][smoke[0]["label"]] == "ice"


# ------------------------------------------------------------------------------------- readers, errors
@pytest.mark.parametrize(
    "loader", [data.load_sentiment, data.load_token_classification, data.load_qa, data.load_multiple_choice]
)
def test_unknown_split_lists_valid_names(loader) -> None:
    with pytest.raises(ValueError, match=r"unknown split 'validation'.*valid splits: train, dev, test"):
        loader("validation")


def test_unknown_corpus_source() -> None:
    with pytest.raises(ValueError, match=r"unknown corpus source 'books'.*wikipedia, lee, pydoc"):
        data.load_corpus(["wikipedia", "books"])


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"corpus/nope.txt"):
        data.data_path("corpus/nope.txt")
    missing = tmp_path / "absent.jsonl"
    with pytest.raises(FileNotFoundError, match=r"absent.jsonl"):
        data.read_jsonl(missing)
    with pytest.raises(FileNotFoundError, match=r"absent.jsonl"):
        data.read_text_file(str(missing))


def test_readers_on_user_files(tmp_path: Path) -> None:
    text = tmp_path / "corpus.txt.gz"
    with gzip.open(text, "wt", encoding="utf-8") as handle:
        handle.write("First line\nof one paragraph.\n\n\nSecond  paragraph.\r\n")
    assert data.read_text_file(text) == ["First line", "of one paragraph.", "Second  paragraph."]
    assert data.read_text_file(text, paragraphs="blank_line") == [
        "First line of one paragraph.",
        "Second  paragraph.",
    ]
    with pytest.raises(ValueError, match="paragraphs must be"):
        data.read_text_file(text, paragraphs="sentence")  # type: ignore[arg-type]

    records = tmp_path / "records.jsonl"
    records.write_text('{"text": "é", "label": 1}\n\n{"text": "b", "label": 0}\n', encoding="utf-8")
    assert data.read_jsonl(records) == [{"text": "é", "label": 1}, {"text": "b", "label": 0}]
    records.write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"records.jsonl:2: invalid JSON"):
        data.read_jsonl(records)
    records.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"records.jsonl:1: expected a JSON object"):
        data.read_jsonl(records)

    tsv = tmp_path / "s.tsv"
    tsv.write_text("7\t-1.5\ta\tb\n", encoding="utf-8")
    assert data.read_sentiment_tsv(tsv) == [{"id": 7, "rating": -1.5, "text": "a\tb"}]
    tsv.write_text("7\tnope\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected 3 tab-separated columns"):
        data.read_sentiment_tsv(tsv)


def test_stable_split_is_fixed_and_exact() -> None:
    items = [str(i) for i in range(10)]
    assert data.stable_split(items, key=str) == {
        "train": ["0", "1", "2", "3", "5", "6", "7", "8"],
        "dev": ["9"],
        "test": ["4"],
    }
    many = data.stable_split(list(range(1000)), key=str, stratify=lambda i: i % 2)
    assert {name: len(part) for name, part in many.items()} == {"train": 800, "dev": 100, "test": 100}
    assert sum(i % 2 for i in many["dev"]) == 50
