"""Small real datasets shipped with convbert, and readers for your own files in the same formats.

Sources, licenses, counts and file schemas are in ``convbert/data/README.md``. Everything is read
through ``importlib.resources``, so it works from an installed wheel as well as from a checkout.

>>> from convbert.data import load_sentiment
>>> load_sentiment("train")[0].keys()
dict_keys(['text', 'label'])
"""

from convbert.data._resources import data_path, open_text
from convbert.data.datasets import (
    CORPUS_SOURCES,
    SENTIMENT_LABELS,
    TOKEN_LABELS,
    iter_corpus,
    load_corpus,
    load_multiple_choice,
    load_qa,
    load_sentiment,
    load_token_classification,
)
from convbert.data.readers import iter_jsonl, iter_text_file, read_jsonl, read_sentiment_tsv, read_text_file
from convbert.data.splits import SPLITS, stable_split

__all__ = [
    "CORPUS_SOURCES",
    "SENTIMENT_LABELS",
    "SPLITS",
    "TOKEN_LABELS",
    "data_path",
    "iter_corpus",
    "iter_jsonl",
    "iter_text_file",
    "load_corpus",
    "load_multiple_choice",
    "load_qa",
    "load_sentiment",
    "load_token_classification",
    "open_text",
    "read_jsonl",
    "read_sentiment_tsv",
    "read_text_file",
    "stable_split",
]
