"""Named loaders for the small real datasets shipped in ``convbert/data`` (see its README.md).

Every ``load_*`` function takes a split name and returns a fresh ``list[dict]``; unknown split names
raise ``ValueError`` listing the valid ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from convbert.data._resources import data_path
from convbert.data.readers import iter_text_file, read_jsonl, read_sentiment_tsv
from convbert.data.splits import SPLITS, check_split, stable_split

SENTIMENT_FILE = "sentiment/rotten_tomatoes.tsv"
SENTIMENT_LABELS: tuple[str, ...] = ("negative", "positive")
"""Index = label id: 0 negative (mean rating < 0), 1 positive (mean rating > 0)."""

CORPUS_FILES: dict[str, str] = {
    "wikipedia": "corpus/wikipedia.txt.gz",
    "lee": "corpus/lee_background.txt.gz",
}
CORPUS_SOURCES: tuple[str, ...] = (*CORPUS_FILES, "pydoc")
"""``pydoc`` is not shipped: it is read from the standard library's ``pydoc_data`` at run time."""

TOKEN_LABELS: tuple[str, ...] = ("O", "B-CAP", "I-CAP", "B-NUM", "I-NUM")
"""Index = label id of the rule-derived token classification task."""

MC_SPLITS: tuple[str, ...] = (*SPLITS, "smoke")
QA_SPLITS: tuple[str, ...] = (*SPLITS, "smoke")


def load_sentiment(split: str) -> list[dict[str, Any]]:
    """Rotten Tomatoes sentences as ``{"text": str, "label": int}`` (1 positive, 0 negative).

    The label is the sign of the mean human rating; the 37 sentences rated exactly 0 are dropped.
    The split is stratified by label and fixed by hashing the sentence text (see :mod:`.splits`),
    so duplicated sentences always fall into the same split.
    """
    check_split(split, SPLITS, "sentiment")
    rows = [row for row in read_sentiment_tsv(data_path(SENTIMENT_FILE)) if row["rating"] != 0]
    examples = [{"text": row["text"], "label": int(row["rating"] > 0)} for row in rows]
    return stable_split(examples, key=lambda e: e["text"], stratify=lambda e: e["label"])[split]


def _pydoc_paragraphs() -> Iterator[str]:
    try:
        from pydoc_data.topics import topics
    except ImportError as error:  # some distributions package pydoc_data separately
        raise FileNotFoundError("corpus source 'pydoc' needs the standard library's pydoc_data") from error
    seen: set[str] = set()
    for name in sorted(topics):
        for block in topics[name].split("\n\n"):
            paragraph = " ".join(block.split())
            # Prose only: skip code samples, grammar rules, short headings and repeats across topics.
            prose = len(paragraph.split()) >= 8 and paragraph[-1] in ".:" and not block.startswith(" ")
            if prose and paragraph not in seen:
                seen.add(paragraph)
                yield paragraph


def iter_corpus(sources: str | Iterable[str] = ("wikipedia", "lee")) -> Iterator[str]:
    """Yield pretraining paragraphs (one string each) from the named ``sources`` (a name or names).

    Valid sources: ``wikipedia`` (cleaned Wikipedia sample), ``lee`` (Lee news background corpus),
    ``pydoc`` (Python's own topic help, from the standard library; not shipped).
    """
    names = [sources] if isinstance(sources, str) else list(sources)
    for name in names:
        if name not in CORPUS_SOURCES:
            raise ValueError(f"unknown corpus source {name!r}; valid sources: {', '.join(CORPUS_SOURCES)}")
    for name in names:
        if name == "pydoc":
            yield from _pydoc_paragraphs()
        else:
            yield from iter_text_file(data_path(CORPUS_FILES[name]))


def load_corpus(sources: str | Iterable[str] = ("wikipedia", "lee")) -> list[str]:
    """Return all paragraphs of :func:`iter_corpus` as a list."""
    return list(iter_corpus(sources))


def _derived(task: str, split: str, valid: tuple[str, ...]) -> list[dict[str, Any]]:
    check_split(split, valid, task)
    return read_jsonl(data_path(f"derived/{task}/{split}.jsonl.gz"))


def load_token_classification(split: str) -> list[dict[str, Any]]:
    """Rule-tagged real sentences: ``{"id", "tokens": [str], "tags": [str], "labels": [int]}``.

    ``tags`` use :data:`TOKEN_LABELS` (BIO spans of capitalised words and of numbers); ``labels``
    are their indices in :data:`TOKEN_LABELS`.
    """
    records = _derived("token_classification", split, SPLITS)
    index = {tag: i for i, tag in enumerate(TOKEN_LABELS)}
    for record in records:
        record["labels"] = [index[tag] for tag in record["tags"]]
    return records


def load_qa(split: str) -> list[dict[str, Any]]:
    """Extractive QA in flattened SQuAD form.

    ``{"id", "title", "context", "question", "answers": {"text": [str], "answer_start": [int]}}``.
    ``train``/``dev``/``test`` are cloze questions derived from real paragraphs; ``smoke`` holds the
    five real SQuAD v1.1 questions of AllenNLP's test fixture.
    """
    return _derived("qa", split, QA_SPLITS)


def load_multiple_choice(split: str) -> list[dict[str, Any]]:
    """Multiple choice: ``{"id", "context", "choices": [str], "label": int}`` (index of the right choice).

    ``train``/``dev``/``test``: pick the true next sentence of a real paragraph among 4 candidates.
    ``smoke``: three real two-option QuaRel questions from AllenNLP's test fixture.
    """
    return _derived("multiple_choice", split, MC_SPLITS)
