"""The run's tokenizer: a checkpoint's own, the shipped bert-base-uncased vocabulary, or a small corpus one.

A tiny model spends most of its pretraining time in the 30,522-way softmax and sampling of the generator.
``tokenizer=corpus`` (what ``auto`` picks for a model whose vocab_size is not 30,522) keeps the
``vocab_size`` word pieces of bert-base-uncased that are most frequent in the pretraining corpus, plus
the single-character pieces that spell it, so every word still tokenizes. Unlike training a new WordPiece
vocabulary (whose token ids vary from run to run in ``tokenizers``), this is deterministic, and frequent
words are cut into the same pieces as with the full vocabulary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from convbert.errors import ConfigError

SHIPPED = "bert-base-uncased"
CHOICES = ("auto", SHIPPED, "corpus")


def shipped_tokenizer():
    from convbert.tokenization_fast import ConvBertTokenizerFast

    return ConvBertTokenizerFast()


def corpus_vocabulary(tokenizer: Any, texts: Iterable[str], size: int) -> dict[str, int]:
    """The ``size`` most useful pieces of ``tokenizer``'s vocabulary for ``texts``: special tokens (ids 0-4),
    the character pieces the texts need, then the most frequent pieces (ties: the original id order)."""
    counts: Counter = Counter()
    batch: list[str] = []
    for text in [*texts, None]:  # counted a batch at a time: memory does not grow with the texts
        if text is not None:
            batch.append(text)
        if batch and (text is None or len(batch) == 1024):
            counts.update(i for row in tokenizer(batch, add_special_tokens=False)["input_ids"] for i in row)
            batch = []
    return vocabulary_from_counts(tokenizer, counts, size)


def vocabulary_from_counts(tokenizer: Any, counts: Mapping[int, int], size: int) -> dict[str, int]:
    """``corpus_vocabulary`` from token counts (id -> count; a token store keeps them)."""
    counts = {int(i): int(c) for i, c in counts.items() if c}
    vocab = tokenizer.get_vocab()
    specials = [tokenizer.pad_token, tokenizer.unk_token, tokenizer.cls_token, tokenizer.sep_token,
                tokenizer.mask_token]
    by_id = {i: t for t, i in vocab.items()}
    letters = {c for i in counts for c in by_id[i].removeprefix("##")}
    chars = [t for t in (*letters, *(f"##{c}" for c in letters)) if t in vocab]
    keep = list(dict.fromkeys([*specials, *sorted(chars, key=vocab.__getitem__)]))
    if len(keep) >= size:
        raise ConfigError(f"a vocabulary of {size} pieces cannot hold the {len(keep)} special and character "
                          "pieces this corpus needs; raise model.embedding.vocab_size")
    taken = set(keep)
    frequent = sorted(counts, key=lambda i: (-counts[i], i))
    keep += [by_id[i] for i in frequent if by_id[i] not in taken][: size - len(keep)]
    return {token: i for i, token in enumerate(keep)}


def resolve_tokenizer(setting: str, init_from: str | None, model_vocab_size: int, corpus: Any,
                      saved: Path, resuming: bool = False, progress: bool = True) -> tuple[Any, str]:
    """(tokenizer, description) for the ``tokenizer`` setting; a resumed run reuses its saved copy."""
    from convbert.tokenization_fast import ConvBertTokenizerFast

    if resuming and saved.is_dir():
        return ConvBertTokenizerFast.from_pretrained(saved), f"{saved} (this run's)"
    if setting == "auto":
        if init_from is not None and _has_vocab(Path(init_from)):
            setting = init_from
        else:
            setting = SHIPPED if model_vocab_size == len(shipped_tokenizer()) else "corpus"
    if setting == SHIPPED:
        return shipped_tokenizer(), f"{SHIPPED} (shipped)"
    if setting == "corpus":
        vocab = corpus_vocabulary_of(corpus, model_vocab_size, progress)
        return ConvBertTokenizerFast(vocab=vocab), \
            f"corpus ({model_vocab_size} most frequent bert-base-uncased pieces)"
    path = Path(setting)
    if not _has_vocab(path):
        raise ConfigError(f"tokenizer={setting!r}: not one of {', '.join(CHOICES)} and not a directory with "
                          "vocab.txt or tokenizer.json")
    return ConvBertTokenizerFast.from_pretrained(path), str(path)


def corpus_vocabulary_of(corpus: Any, size: int, progress: bool = True) -> dict[str, int]:
    """The corpus vocabulary of a ``data`` node: counted in the corpus's token store under the full
    bert-base-uncased vocabulary (prepared once and cached like any store), not by tokenizing it again."""
    import sys

    from convbert.data.token_store import CorpusSpec, ensure_store

    base = shipped_tokenizer()

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    store = ensure_store(CorpusSpec.from_data(corpus), base, corpus.cache_dir,
                         workers=corpus.prepare_workers, progress=progress, say=say)
    counts = store.unigram_counts()
    return vocabulary_from_counts(base, dict(enumerate(counts.tolist())), size)


def _has_vocab(path: Path) -> bool:
    return (path / "vocab.txt").is_file() or (path / "tokenizer.json").is_file()
