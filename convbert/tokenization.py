"""BERT's WordPiece tokenizer in pure Python, plus the calling conventions it shares with the fast one.

ConvBERT reuses BERT's uncased vocabulary and text pipeline, so ``ConvBertTokenizer`` reproduces the Hugging
Face pure-Python BERT tokenizer (``BertTokenizerLegacy`` in transformers 5) token for token: clean the text,
space out CJK characters, NFC-normalise, split on whitespace, lower-case and strip accents, split off
punctuation, then greedy longest-match-first WordPiece.  It imports neither ``tokenizers`` nor
``transformers``, so it works wherever Python does; ``convbert.tokenization_fast.ConvBertTokenizerFast`` is
the Rust-backed twin.

The module also holds what both tokenizers share: input validation, the padding/truncation options (resolved
the way Hugging Face resolves them), ``BatchEncoding``, decoding, and ``save_pretrained``/``from_pretrained``.
"""

from __future__ import annotations

import json
import operator
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from convbert.tokenization_added import (
    SPECIAL_TOKEN_ATTRIBUTES,
    AddedToken,
    AddedTokensMixin,
    added_token_from_dict,
    read_added_tokens,
)
from convbert.tokenization_chat import ChatTemplateMixin, check_template_names, load_templates, save_templates

VOCAB_FILE = "vocab.txt"
CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
# As transformers: a ``model_max_length`` above this means "do not truncate" (a tokenizer saved without a
# length says int(1e30), transformers' VERY_LARGE_INTEGER).
LARGE_INTEGER = int(1e20)

PathLike = str | os.PathLike
# One sequence: a text, or a list of words when ``is_split_into_words=True``.
TextOrWords = str | Sequence[str]


def wordpiece_of_tokenizer_json(path: Path) -> tuple[dict[str, int], dict[str, Any]]:
    """(vocabulary, normaliser settings) of a WordPiece ``tokenizer.json``, for the pure-Python tokenizer."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    model = document.get("model") or {}
    if model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
        raise ValueError(f"{path}: not a WordPiece tokenizer.json (model type {model.get('type')!r}); "
                         "ConvBERT's tokenizers are WordPiece")
    vocab = dict(model["vocab"])
    for added in document.get("added_tokens") or []:  # tokens added after the vocabulary keep their ids
        vocab.setdefault(added["content"], added["id"])
    normalizer = document.get("normalizer") or {}
    settings: dict[str, Any] = {}
    if normalizer.get("type") == "BertNormalizer":
        settings = {"do_lower_case": normalizer.get("lowercase", True),
                    "tokenize_chinese_chars": normalizer.get("handle_chinese_chars", True),
                    "strip_accents": normalizer.get("strip_accents")}
    return vocab, settings


def default_vocab_file() -> Path:
    """bert-base-uncased's vocab.txt, shipped in the package (found via importlib.resources: wheels work)."""
    return Path(str(resources.files("convbert").joinpath("data", "vocab", VOCAB_FILE)))


def load_vocab(vocab_file: PathLike) -> dict[str, int]:
    """Read a one-token-per-line vocabulary; a token's id is its line number (a repeat keeps the last)."""
    with open(vocab_file, encoding="utf-8") as reader:
        return {line.rstrip("\n"): index for index, line in enumerate(reader)}


# ------------------------------------------------------------------------------------------------------------
# Character classes, exactly as BERT defines them (they are not Unicode's own definitions).


def _is_whitespace(char: str) -> bool:
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_control(char: str) -> bool:
    return char not in "\t\n\r" and unicodedata.category(char).startswith("C")


def _is_punctuation(char: str) -> bool:
    cp = ord(char)
    # All non-letter/number ASCII counts, e.g. "^", "$" and "`", which Unicode does not call punctuation.
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_chinese_char(cp: int) -> bool:
    """The CJK Unified Ideographs blocks (not Hangul, Hiragana or Katakana, which are written with spaces)."""
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


class _CharMap(dict):
    """A ``str.translate`` table that classifies each distinct character once; later texts run at C speed."""

    def __init__(self, classify) -> None:
        super().__init__()
        self._classify = classify

    def __missing__(self, cp: int) -> str | None:
        if len(self) > 300_000:  # arbitrary Unicode soup must not grow the cache without bound
            self.clear()
        value = self[cp] = self._classify(chr(cp))
        return value


def _clean(char: str, space_cjk: bool) -> str | None:
    cp = ord(char)
    if cp == 0 or cp == 0xFFFD or _is_control(char):
        return None
    if _is_whitespace(char):
        return " "
    if space_cjk and _is_chinese_char(cp):
        return f" {char} "
    return char


_CLEAN = _CharMap(lambda c: _clean(c, space_cjk=False))
_CLEAN_AND_SPACE_CJK = _CharMap(lambda c: _clean(c, space_cjk=True))
_DROP_NONSPACING_MARKS = _CharMap(lambda c: None if unicodedata.category(c) == "Mn" else c)
_SPACE_PUNCTUATION = _CharMap(lambda c: f" {c} " if _is_punctuation(c) else c)


def _strip_accents(text: str) -> str:
    return text if text.isascii() else unicodedata.normalize("NFD", text).translate(_DROP_NONSPACING_MARKS)


class BasicTokenizer:
    """BERT's pre-WordPiece step: clean, space CJK, NFC, split on spaces, lower/strip accents, split off
    punctuation.

    Each stage is a ``str.translate``/``str.split`` over the whole text instead of BERT's per-character Python
    loops; the result is the same because every stage maps characters independently of their neighbours and
    never merges two words.
    """

    def __init__(
        self,
        do_lower_case: bool = True,
        never_split: Iterable[str] | None = None,
        tokenize_chinese_chars: bool = True,
        strip_accents: bool | None = None,
    ) -> None:
        self.do_lower_case = do_lower_case
        self.never_split = set(never_split or ())
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.strip_accents = strip_accents

    def tokenize(self, text: str, never_split: Iterable[str] | None = None) -> list[str]:
        """Split ``text`` into words and punctuation; words in ``never_split`` pass through untouched."""
        return self.words(text, frozenset(self.never_split.union(never_split or ())))

    def words(self, text: str, keep: frozenset[str]) -> list[str]:
        """``tokenize`` with the never-split set prepared by the caller (it is hashed once, not per text)."""
        text = text.translate(_CLEAN_AND_SPACE_CJK if self.tokenize_chinese_chars else _CLEAN)
        if not text.isascii():
            # Equivalent spellings of one character (composed or not) should give the same tokens.
            text = unicodedata.normalize("NFC", text)
        words = text.split()
        if keep.isdisjoint(words):
            return self._normalize(" ".join(words)).translate(_SPACE_PUNCTUATION).split()
        out: list[str] = []
        for word in words:
            if word in keep:
                out.append(word)
            else:
                out.extend(self._normalize(word).translate(_SPACE_PUNCTUATION).split())
        return out

    def _normalize(self, text: str) -> str:
        if self.do_lower_case:
            text = text.lower()
            return text if self.strip_accents is False else _strip_accents(text)
        return _strip_accents(text) if self.strip_accents else text


class WordPiece:
    """Greedy longest-match-first split of one word into vocabulary pieces ("##" marks word-internal ones).

    A word longer than ``max_input_chars_per_word`` characters, or with any stretch no piece covers, becomes
    the unknown token as a whole.  Results are memoised because real text repeats its words.
    """

    def __init__(self, vocab: Mapping[str, int], unk_token: str, max_input_chars_per_word: int = 100) -> None:
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word
        # No piece is longer than the longest vocabulary entry, so longer candidates need not be tried.
        self._longest = max((len(token) for token in vocab), default=1)
        self._cache: dict[str, tuple[str, ...]] = {}

    def tokenize(self, word: str) -> list[str]:
        return list(self.pieces(word))

    def pieces(self, word: str) -> tuple[str, ...]:
        """``tokenize``, memoised (a tuple, so callers cannot alter the cache)."""
        pieces = self._cache.get(word)
        if pieces is None:
            if len(self._cache) > 100_000:
                self._cache.clear()
            pieces = self._cache[word] = tuple(self._split(word))
        return pieces

    def _split(self, word: str) -> list[str]:
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        pieces, start, n = [], 0, len(word)
        while start < n:
            end = min(n, start + self._longest)
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
                end -= 1
            else:
                return [self.unk_token]
            pieces.append(piece)
            start = end
        return pieces


# ------------------------------------------------------------------------------------------------------------
# What ``__call__`` returns.


class BatchEncoding(dict):
    """The model inputs (``input_ids``, ``attention_mask``, ...) as a dict that also allows ``enc.input_ids``.

    Like Hugging Face's class of the same name, so ``model(**enc)`` works; the fast tokenizer also keeps the
    ``tokenizers`` encodings for ``word_ids``/``tokens``/``sequence_ids``.
    """

    def __init__(self, data: Mapping[str, Any] | None = None, encodings: list | None = None) -> None:
        super().__init__(data or {})
        self._encodings = encodings

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no key {name!r}; keys are {list(self)}") from None

    def __getstate__(self) -> dict:
        return {"encodings": self._encodings}

    def __setstate__(self, state: dict) -> None:
        self._encodings = state["encodings"]

    @property
    def encodings(self) -> list | None:
        """The ``tokenizers.Encoding`` of each sequence (fast tokenizer only), else None."""
        return self._encodings

    def _encoding(self, batch_index: int):
        if self._encodings is None:
            raise ValueError("word alignment is only available from ConvBertTokenizerFast")
        return self._encodings[batch_index]

    def tokens(self, batch_index: int = 0) -> list[str]:
        """The token strings of sequence ``batch_index``, special and padding tokens included."""
        return self._encoding(batch_index).tokens

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token, the index of the word it came from (None for special and padding tokens)."""
        return self._encoding(batch_index).word_ids

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token, 0 or 1 for the first or second text of a pair (None for special tokens)."""
        return self._encoding(batch_index).sequence_ids

    def to(self, device: Any) -> BatchEncoding:
        """Move every tensor to ``device`` (in place, like Hugging Face); lists are left alone."""
        for key, value in self.items():
            if hasattr(value, "to"):
                self[key] = value.to(device)
        return self


def as_tensors(data: dict[str, list], tensor_type: str | None, batched: bool) -> dict[str, Any]:
    """Lists to "pt"/"np" int64 tensors (None: unchanged); a single sequence gains a batch axis."""
    if tensor_type is None:
        return data
    if tensor_type not in ("pt", "np"):
        raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {tensor_type!r}")
    if tensor_type == "pt":
        import torch

        convert = partial(torch.tensor, dtype=torch.long)
    else:
        import numpy as np

        convert = partial(np.asarray, dtype=np.int64)
    out = {}
    for key, value in data.items():
        if batched and value and isinstance(value[0], list) and len({len(row) for row in value}) > 1:
            raise ValueError(
                f"cannot stack sequences of different lengths into a tensor ({key}); pass padding=True "
                "(or padding='max_length') together with return_tensors"
            )
        out[key] = convert(value if batched else [value])
    return out


def shape_output(
    data: dict[str, list], batched: bool, options: EncodeOptions, sample: list[int] | None = None
) -> dict[str, Any]:
    """Finish ``__call__``'s columns (one entry per row): add ``length`` (ids per row, padding included) and
    ``overflow_to_sample_mapping`` when asked, then shape them as Hugging Face's fast tokenizer does: tensors
    and overflow keep the batch axis; a single text without them loses it, except ``length`` ([n])."""
    if options.return_length:
        data["length"] = [len(ids) for ids in data["input_ids"]]
    if options.return_overflowing_tokens:
        data["overflow_to_sample_mapping"] = list(sample or [])
    if options.return_tensors is not None:
        return as_tensors(data, options.return_tensors, batched=True)
    if batched or options.return_overflowing_tokens:
        return data
    return {key: value[0] if value and isinstance(value[0], list) else value for key, value in data.items()}


# ------------------------------------------------------------------------------------------------------------
# Validating what ``__call__`` is given.

_ACCEPTED = (
    "a str, a list of str (a batch), or a list of (str, str) pairs; with is_split_into_words=True, a list of "
    "words (str) or a batch of such lists"
)


def describe_type(value: Any) -> str:
    """Name a bad argument's type, looking one level into lists so 'list of bytes' reads as such."""
    name = type(value).__name__
    if isinstance(value, (list, tuple)) and value:
        return f"{name} of {describe_type(value[0])}"
    return name


def _is_words(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(word, str) for word in value)


def _check_pair_batch(text: Sequence, text_pair: Any, check) -> list:
    if text_pair is None:
        return [None] * len(text)
    if isinstance(text_pair, str) or not isinstance(text_pair, (list, tuple)):
        raise TypeError(
            "text is a batch, so text_pair must be a batch of the same length; "
            f"got {describe_type(text_pair)}"
        )
    if len(text_pair) != len(text):
        raise ValueError(f"text has {len(text)} sequences but text_pair has {len(text_pair)}")
    for item in text_pair:
        check(item, "text_pair")
    return list(text_pair)


def as_examples(
    text: Any, text_pair: Any = None, is_split_into_words: bool = False
) -> tuple[list[tuple[TextOrWords, TextOrWords | None]], bool]:
    """Turn ``__call__``'s ``text``/``text_pair`` into ``[(first, second_or_None), ...]`` and a batched flag.

    Anything else (None, bytes, numbers, lists nested too deep or too shallow) is a TypeError that names what
    was given, rather than a crash deep inside the tokenizer.
    """
    if is_split_into_words:
        return _as_word_examples(text, text_pair)

    def check(item: Any, name: str) -> None:
        if not isinstance(item, str):
            raise TypeError(f"{name} must be {_ACCEPTED}; found an element of type {describe_type(item)}")

    if isinstance(text, str):
        if text_pair is not None and not isinstance(text_pair, str):
            raise TypeError(
                f"text is a str, so text_pair must be a str or None; got {describe_type(text_pair)}"
            )
        return [(text, text_pair)], False
    if not isinstance(text, (list, tuple)):
        raise TypeError(f"text must be {_ACCEPTED}; got {describe_type(text)}")
    if text and all(isinstance(item, (list, tuple)) for item in text):  # a batch of (first, second) pairs
        if text_pair is not None:
            raise TypeError(
                f"text is a batch of (first, second) pairs, so text_pair must be None; "
                f"got {describe_type(text_pair)}"
            )
        for item in text:
            if len(item) != 2:
                raise TypeError(
                    f"each pair in text must hold exactly 2 texts, got {len(item)} ({describe_type(item)}); "
                    "for lists of words pass is_split_into_words=True"
                )
            check(item[0], "text")
            check(item[1], "text")
        return [(first, second) for first, second in text], True
    for item in text:
        check(item, "text")
    return list(zip(text, _check_pair_batch(text, text_pair, check), strict=True)), True


def _as_word_examples(
    text: Any, text_pair: Any
) -> tuple[list[tuple[Sequence[str], Sequence[str] | None]], bool]:
    def check(item: Any, name: str) -> None:
        if not _is_words(item):
            raise TypeError(f"{name} must be {_ACCEPTED}; found {describe_type(item)}")

    if not isinstance(text, (list, tuple)):
        raise TypeError(
            f"with is_split_into_words=True, text must be a list of words; got {describe_type(text)}"
        )
    if _is_words(text):
        if text_pair is not None and not _is_words(text_pair):
            raise TypeError(
                f"text is one list of words, so text_pair must be one too; got {describe_type(text_pair)}"
            )
        return [(text, text_pair)], False
    if all(isinstance(item, tuple) and len(item) == 2 and all(map(_is_words, item)) for item in text):
        if text_pair is not None:
            raise TypeError(
                f"text is a batch of (first, second) pairs, so text_pair must be None; "
                f"got {describe_type(text_pair)}"
            )
        return [(first, second) for first, second in text], True
    for item in text:
        check(item, "text")
    return list(zip(text, _check_pair_batch(text, text_pair, check), strict=True)), True


# ------------------------------------------------------------------------------------------------------------
# Padding and truncation options, resolved as Hugging Face resolves them.

_PADDING = {
    False: None,
    None: None,
    "do_not_pad": None,
    True: "longest",
    "longest": "longest",
    "max_length": "max_length",
}
_TRUNCATION = {
    False: None,
    None: None,
    "do_not_truncate": None,
    True: "longest_first",
    "longest_first": "longest_first",
    "only_first": "only_first",
    "only_second": "only_second",
}


@dataclass(frozen=True)
class EncodeOptions:
    """Everything that shapes one ``__call__``, after defaults are filled in."""

    add_special_tokens: bool
    padding: str | None  # None, "longest" or "max_length"
    truncation: str | None  # None, "longest_first", "only_first" or "only_second"
    max_length: int | None
    pad_to_multiple_of: int | None
    padding_side: str
    is_split_into_words: bool
    return_tensors: str | None
    return_token_type_ids: bool
    return_attention_mask: bool
    return_special_tokens_mask: bool
    return_offsets_mapping: bool
    return_length: bool = False
    return_overflowing_tokens: bool = False
    stride: int = 0  # only used with return_overflowing_tokens


def _lookup(table: dict, value: Any, name: str) -> str | None:
    try:
        return table[value]
    except (KeyError, TypeError):
        choices = ", ".join(repr(key) for key in table)
        raise ValueError(f"{name} must be one of {choices}; got {value!r}") from None


# ------------------------------------------------------------------------------------------------------------
# The API both tokenizers expose.

_SPECIAL_NAMES = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")  # Hugging Face's order


class TokenizerBase(AddedTokensMixin, ChatTemplateMixin):
    """Special tokens, ``__call__``, decoding and saving; subclasses supply the vocabulary and the encoder.

    Added tokens and named special tokens (``add_tokens``, ``eos_token``, ...) come from ``AddedTokensMixin``,
    ``apply_chat_template`` from ``ChatTemplateMixin``.
    """

    model_input_names: ClassVar[tuple[str, ...]] = ("input_ids", "token_type_ids", "attention_mask")
    # The class name Hugging Face's AutoTokenizer resolves, so a saved directory also loads in transformers.
    hf_tokenizer_class: ClassVar[str] = "ConvBertTokenizer"
    # tok(text, "") outside a batch: Hugging Face's legacy tokenizer encodes a pair ([CLS] a [SEP] [SEP]),
    # its Rust-backed one a single text (its `if text_pair` test); each of ours follows its counterpart.
    empty_pair_is_single: ClassVar[bool] = False
    # transformers 5 names the machinery behind a tokenizer: "tokenizers" (Rust) or "custom" (pure Python).
    backend: ClassVar[str] = "custom"
    # transformers' positional constructor inputs; ours are all keywords.
    init_inputs: ClassVar[tuple] = ()

    def __init__(
        self,
        *,
        unk_token: str,
        sep_token: str,
        pad_token: str,
        cls_token: str,
        mask_token: str,
        model_max_length: int,
        clean_up_tokenization_spaces: bool,
        padding_side: str,
        truncation_side: str,
        bos_token: str | AddedToken | None = None,
        eos_token: str | AddedToken | None = None,
        extra_special_tokens: Sequence[str | AddedToken] | None = None,
        chat_template: str | dict[str, str] | None = None,
        unused: Mapping[str, Any] | None = None,
    ) -> None:
        tokens = dict(zip(SPECIAL_TOKEN_ATTRIBUTES, (bos_token, eos_token, unk_token, sep_token, pad_token,
                                                    cls_token, mask_token), strict=True))
        for name in _SPECIAL_NAMES:
            if tokens[name] is None:
                raise TypeError(f"{name} must be a non-empty str or an AddedToken, got None")
        self._store_special_tokens(tokens, extra_special_tokens)
        self.chat_template = chat_template
        for name in unused or ():
            if hasattr(type(self), name):  # as transformers: `add_special_tokens=True` would shadow a method
                raise AttributeError(f"{name!r} conflicts with the tokenizer's attribute of that name")
        if unused:
            import warnings

            warnings.warn(
                f"{type(self).__name__} ignores {sorted(unused)} (accepted for transformers compatibility; "
                "they have no effect on a BERT tokenizer)",
                stacklevel=3,
            )
        self._unused = dict(unused or {})
        for name, side in (("padding_side", padding_side), ("truncation_side", truncation_side)):
            if side not in ("left", "right"):
                raise ValueError(f"{name} must be 'left' or 'right', got {side!r}")
        self.model_max_length = model_max_length
        self.clean_up_tokenization_spaces = clean_up_tokenization_spaces
        self.padding_side = padding_side
        self.truncation_side = truncation_side

    # -- supplied by subclasses ------------------------------------------------------------------------------

    def get_vocab(self) -> dict[str, int]:
        raise NotImplementedError

    def _token_to_id(self, token: str) -> int:
        raise NotImplementedError

    def _id_to_token(self, index: int) -> str | None:
        raise NotImplementedError

    def _encode(self, examples: list, batched: bool, options: EncodeOptions) -> BatchEncoding:
        raise NotImplementedError

    def _decode_one(self, ids: list[int], skip_special_tokens: bool) -> str:
        raise NotImplementedError

    def _config(self) -> dict[str, Any]:
        """Constructor arguments that ``save_pretrained`` writes to tokenizer_config.json."""
        return {
            **{name: getattr(self, name) for name in SPECIAL_TOKEN_ATTRIBUTES},
            "extra_special_tokens": self.extra_special_tokens,
            "added_tokens_decoder": self._added_tokens_config(),
            "model_max_length": self.model_max_length,
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
            "padding_side": self.padding_side,
            "truncation_side": self.truncation_side,
        }

    @property
    def init_kwargs(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this tokenizer (transformers' attribute of that name)."""
        return {**self._config(), "chat_template": self.chat_template, **self._unused}

    # -- special tokens --------------------------------------------------------------------------------------

    @property
    def pad_token_type_id(self) -> int:
        return 0

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """[CLS] A [SEP] adds 2, [CLS] A [SEP] B [SEP] adds 3."""
        return 3 if pair else 2

    def build_inputs_with_special_tokens(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None
    ) -> list[int]:
        """``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]``."""
        cls, sep = [self.cls_token_id], [self.sep_token_id]
        if token_ids_1 is None:
            return cls + token_ids_0 + sep
        return cls + token_ids_0 + sep + token_ids_1 + sep

    def create_token_type_ids_from_sequences(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None
    ) -> list[int]:
        """0 for ``[CLS] A [SEP]``, 1 for ``B [SEP]``."""
        first = [0] * (len(token_ids_0) + 2)
        return first if token_ids_1 is None else first + [1] * (len(token_ids_1) + 1)

    def get_special_tokens_mask(
        self,
        token_ids_0: list[int],
        token_ids_1: list[int] | None = None,
        already_has_special_tokens: bool = False,
    ) -> list[int]:
        """1 where ``build_inputs_with_special_tokens`` puts [CLS]/[SEP]; or, for ids that already contain
        them, 1 wherever a special token's id appears."""
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError("token_ids_1 must be None when the ids already contain special tokens")
            special = self._skipped_ids()
            return [1 if int(index) in special else 0 for index in token_ids_0]
        first = [1] + [0] * len(token_ids_0) + [1]
        return first if token_ids_1 is None else first + [0] * len(token_ids_1) + [1]

    # -- tokens <-> ids --------------------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.get_vocab())

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Unknown tokens map to ``unk_token_id``."""
        if isinstance(tokens, str):
            return self._token_to_id(tokens)
        return [self._token_to_id(token) for token in tokens]

    def convert_ids_to_tokens(
        self, ids: int | Sequence[int], skip_special_tokens: bool = False
    ) -> str | list[str | None] | None:
        if isinstance(ids, int):
            return self._id_to_token(ids)
        skip = self._skipped_ids() if skip_special_tokens else ()
        return [self._id_to_token(int(index)) for index in _as_id_list(ids) if int(index) not in skip]

    # -- encoding --------------------------------------------------------------------------------------------

    def __call__(
        self,
        text: TextOrWords | Sequence[TextOrWords] | Sequence[tuple[TextOrWords, TextOrWords]] | None = None,
        text_pair: TextOrWords | Sequence[TextOrWords] | None = None,
        text_target: TextOrWords | Sequence[TextOrWords] | None = None,
        text_pair_target: TextOrWords | Sequence[TextOrWords] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        return_overflowing_tokens: bool = False,
        stride: int = 0,
        max_target_length: int | None = None,
        src_lang: str | None = None,
        tgt_lang: str | None = None,
    ) -> BatchEncoding:
        """Encode a text, a pair, or a batch of either into model inputs (Hugging Face's keyword semantics).

        ``text_target`` (and ``text_pair_target``), for sequence-to-sequence training, are encoded with the
        same options (``max_target_length`` replacing ``max_length``) and their ``input_ids`` returned as
        ``labels``; given alone, the target's encoding is returned.  ``src_lang``/``tgt_lang``, which
        multilingual tokenizers take, are accepted and ignored: ConvBERT's vocabulary has no language codes.

        ``padding``: False/"do_not_pad", True/"longest" (to the longest in the batch) or "max_length".
        ``truncation``: False/"do_not_truncate", True/"longest_first", "only_first" or "only_second"; left
        at None, giving ``max_length`` alone truncates longest-first (Hugging Face's backward-compatible
        default).
        Without ``max_length``, truncation and "max_length" padding use ``model_max_length``.
        A truncation that cannot be met (``max_length`` below the 2 or 3 special tokens, or an only_first /
        only_second target too short) raises ValueError.

        ``return_length=True`` adds ``length``: the number of ids of each returned sequence, padding
        included (for a single text without overflow, a one-element list, as in Hugging Face).

        ``return_overflowing_tokens=True`` (with truncation) keeps what truncation would drop, in Hugging
        Face's *fast* format (both tokenizers use it; the legacy pure-Python ``overflowing_tokens`` format is
        not offered): every window becomes its own row, the rows of one example follow each other, and
        ``overflow_to_sample_mapping`` gives each row's example index.  Each window after the first repeats
        the last ``stride`` tokens of the one before.  With ``truncation="only_second"`` only the second text
        (a question-answering context) is windowed and the first is repeated in every row; "only_first" is
        the mirror image.  ``longest_first`` cuts pairs the way the Rust tokenizer does: the longer text gets
        the windows when only it must be cut, and when both must be cut, every window of the first text is
        paired with every window of the second.  Rows are padded like a batch, and the output always has a
        batch axis.  ``stride`` must be smaller than a window's room for tokens (``max_length`` minus the
        special tokens, minus the other text for only_first / only_second); otherwise ValueError.
        """
        options = dict(
            add_special_tokens=add_special_tokens,
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            is_split_into_words=is_split_into_words,
            pad_to_multiple_of=pad_to_multiple_of,
            padding_side=padding_side,
            return_tensors=return_tensors,
            return_token_type_ids=return_token_type_ids,
            return_attention_mask=return_attention_mask,
            return_special_tokens_mask=return_special_tokens_mask,
            return_offsets_mapping=return_offsets_mapping,
            return_length=return_length,
            return_overflowing_tokens=return_overflowing_tokens,
            stride=stride,
        )
        if text is None and text_target is None:
            raise TypeError(f"text must be {_ACCEPTED} (or pass text_target); got NoneType")
        if text_target is None:
            return self._encode_examples(text, text_pair, **options)
        target_length = max_length if max_target_length is None else max_target_length
        target_options = {**options, "max_length": target_length}
        labels = self._encode_examples(text_target, text_pair_target, **target_options)
        if text is None:
            return labels
        encoding = self._encode_examples(text, text_pair, **options)
        encoding["labels"] = labels["input_ids"]
        return encoding

    def _encode_examples(self, text: Any, text_pair: Any, **options: Any) -> BatchEncoding:
        """``__call__``'s encoding of a text (or batch) and its pairs; ``options``: its keyword arguments."""
        examples, batched = as_examples(text, text_pair, options["is_split_into_words"])
        if self.empty_pair_is_single and not batched and examples[0][1] is not None and not examples[0][1]:
            examples = [(examples[0][0], None)]
        has_pairs = any(second is not None for _, second in examples)
        return self._encode(examples, batched, self._options(**options, has_pairs=has_pairs))

    def encode(self, text: TextOrWords, text_pair: TextOrWords | None = None, **kwargs: Any) -> list[int]:
        """The ``input_ids`` of one text or pair."""
        if not isinstance(text, str) and not kwargs.get("is_split_into_words"):
            raise TypeError(
                f"encode takes one text (str), got {describe_type(text)}; use __call__ for batches"
            )
        return self(text, text_pair, **kwargs)["input_ids"]

    def _options(
        self,
        *,
        padding: bool | str,
        truncation: bool | str | None,
        max_length: int | None,
        pad_to_multiple_of: int | None,
        padding_side: str | None,
        return_tensors: str | None,
        return_token_type_ids: bool | None,
        return_attention_mask: bool | None,
        has_pairs: bool,
        stride: int = 0,
        **flags: Any,
    ) -> EncodeOptions:
        if max_length is not None and padding is False and truncation is None:
            truncation = "longest_first"
        padding_mode = _lookup(_PADDING, padding, "padding")
        truncation_mode = _lookup(_TRUNCATION, truncation, "truncation")
        for name, value in (("max_length", max_length), ("pad_to_multiple_of", pad_to_multiple_of)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise TypeError(f"{name} must be a non-negative int or None, got {value!r}")
        if not isinstance(stride, int) or isinstance(stride, bool) or stride < 0:
            raise TypeError(f"stride must be a non-negative int, got {stride!r}")
        if pad_to_multiple_of == 0:
            raise ValueError("pad_to_multiple_of must be positive")
        if max_length is None:
            unlimited = self.model_max_length > LARGE_INTEGER
            if padding_mode == "max_length":
                padding_mode = None if unlimited else padding_mode
            if truncation_mode is not None:
                truncation_mode = None if unlimited else truncation_mode
            if not unlimited and (padding_mode == "max_length" or truncation_mode is not None):
                max_length = self.model_max_length
        if truncation_mode is not None and flags["add_special_tokens"]:
            needed = self.num_special_tokens_to_add(pair=has_pairs)
            if max_length < needed:
                raise ValueError(
                    f"cannot truncate to max_length={max_length}: the special tokens alone take {needed}"
                )
        if (
            truncation_mode is not None
            and padding_mode is not None
            and pad_to_multiple_of is not None
            and max_length % pad_to_multiple_of
        ):
            raise ValueError(
                f"truncation length ({max_length}) is not a multiple of "
                f"pad_to_multiple_of ({pad_to_multiple_of})"
            )
        if flags.get("return_overflowing_tokens"):
            self._check_overflow(truncation_mode, max_length, stride, has_pairs, flags["add_special_tokens"])
        side = self.padding_side if padding_side is None else padding_side
        if side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {side!r}")
        if return_tensors not in (None, "pt", "np"):
            raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
        return EncodeOptions(
            padding=padding_mode,
            truncation=truncation_mode,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            padding_side=side,
            return_tensors=return_tensors,
            return_token_type_ids=True if return_token_type_ids is None else return_token_type_ids,
            return_attention_mask=True if return_attention_mask is None else return_attention_mask,
            stride=stride,
            **flags,
        )

    def _check_overflow(
        self,
        truncation: str | None,
        max_length: int | None,
        stride: int,
        pair: bool,
        add_special_tokens: bool,
    ) -> None:
        """Refuse overflow settings that can never give windows (Hugging Face returns unwindowed rows, garbage
        rows, or a Rust panic for these)."""
        if truncation is None:
            raise ValueError(
                "return_overflowing_tokens=True needs truncation, or nothing overflows: pass "
                "truncation=True (or 'only_second' to window only the second text of pairs, e.g. a "
                "question-answering context) and max_length"
            )
        special = self.num_special_tokens_to_add(pair) if add_special_tokens else 0
        room = max_length - special
        where = f"max_length={max_length}" + (f" minus {special} special tokens" if special else "")
        if stride >= room:
            raise ValueError(
                f"stride={stride} must be smaller than the room a window has for tokens ({where} "
                f"leaves {room}), since each window after the first repeats the last stride tokens of the "
                "one before; lower stride or raise max_length"
            )
        if pair and truncation == "longest_first" and room < 2:
            raise ValueError(
                "truncation='longest_first' with return_overflowing_tokens needs room for at least one "
                f"token of each text of a pair, but {where} leaves {room}; raise max_length"
            )

    def pad(
        self,
        encoded_inputs: Mapping[str, Sequence] | Sequence[Mapping[str, Sequence[int]]],
        padding: bool | str = True,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | None = None,
    ) -> BatchEncoding:
        """Pad already-encoded features (a list of dicts, or a dict of lists), e.g. in a data collator."""
        if isinstance(encoded_inputs, Mapping):
            keys = list(encoded_inputs)
            columns = [encoded_inputs[key] for key in keys]
            rows = [dict(zip(keys, values, strict=True)) for values in zip(*columns, strict=True)]
        else:
            rows = [dict(row) for row in encoded_inputs]
        rows = [{key: _as_id_list(value) for key, value in row.items()} for row in rows]
        mode = _lookup(_PADDING, padding, "padding")
        if mode == "max_length" and max_length is None:
            max_length = self.model_max_length
        if return_attention_mask is None or return_attention_mask:
            for row in rows:
                row.setdefault("attention_mask", [1] * len(row["input_ids"]))
        pad_features(rows, mode, max_length, pad_to_multiple_of, self.padding_side, self.pad_token_id)
        data = {key: [row[key] for row in rows] for key in (rows[0] if rows else ())}
        return BatchEncoding(as_tensors(data, return_tensors, batched=True))

    # -- decoding --------------------------------------------------------------------------------------------

    def decode(
        self,
        token_ids: int | Sequence[int] | Sequence[Sequence[int]] | Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> str | list[str]:
        """Ids (a list, a tensor, or a batch of them) back to text; "##" pieces are glued to their word."""
        ids = _as_id_list(token_ids)
        if ids and isinstance(ids[0], list):
            return self.batch_decode(ids, skip_special_tokens, clean_up_tokenization_spaces)
        text = self._decode_one(ids, skip_special_tokens)
        clean = (
            self.clean_up_tokenization_spaces
            if clean_up_tokenization_spaces is None
            else clean_up_tokenization_spaces
        )
        return clean_up_tokenization(text) if clean else text

    def batch_decode(
        self,
        sequences: Sequence[Sequence[int]] | Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> list[str]:
        return [
            self.decode(ids, skip_special_tokens, clean_up_tokenization_spaces)
            for ids in _as_id_list(sequences)
        ]

    # -- saving and loading ----------------------------------------------------------------------------------

    def save_vocabulary(self, save_directory: PathLike, filename_prefix: str | None = None) -> tuple[str]:
        """Write vocab.txt, one token per line in id order; returns its path."""
        path = Path(save_directory)
        if path.is_dir():
            path = path / ((f"{filename_prefix}-" if filename_prefix else "") + VOCAB_FILE)
        tokens = sorted(self._base_vocab().items(), key=lambda item: item[1])
        with open(path, "w", encoding="utf-8") as writer:
            writer.writelines(token + "\n" for token, _ in tokens)
        return (str(path),)

    def _base_vocab(self) -> dict[str, int]:
        return self.get_vocab()

    def save_pretrained(self, save_directory: PathLike, save_jinja_files: bool = True) -> tuple[str, ...]:
        """Write vocab.txt, tokenizer_config.json and special_tokens_map.json (and the fast tokenizer's
        tokenizer.json); the directory also loads with transformers' ``AutoTokenizer``.

        Added tokens are saved as transformers saves them (``added_tokens_decoder`` in tokenizer_config.json,
        added_tokens.json for ids past the vocabulary), the chat template as chat_template.jinja (several:
        also additional_chat_templates/NAME.jinja), or in tokenizer_config.json with
        ``save_jinja_files=False``.
        """
        directory = Path(save_directory)
        check_template_names(self.chat_template)  # before anything is written: names become file names
        directory.mkdir(parents=True, exist_ok=True)
        template_config, template_files = save_templates(self.chat_template, directory, save_jinja_files)
        config = {**self._config(), **template_config, "tokenizer_class": self.hf_tokenizer_class}
        written = list(template_files)
        for name, content in ((CONFIG_FILE, config), (SPECIAL_TOKENS_MAP_FILE, self.special_tokens_map)):
            (directory / name).write_text(
                json.dumps(content, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
            )
            written.append(str(directory / name))
        written += self.save_vocabulary(directory)
        written += self._save_added_tokens(directory, self.vocab_size)
        return tuple(written) + self._save_extra(directory)

    def _save_extra(self, directory: Path) -> tuple[str, ...]:
        return ()

    @classmethod
    def from_pretrained(cls, pretrained_directory: PathLike, **kwargs: Any) -> TokenizerBase:
        """Load from a local directory written by ``save_pretrained`` (ours or Hugging Face's), or from a
        Hugging Face Hub id such as ``"org/name"`` (its tokenizer files only are fetched; ``revision``,
        ``cache_dir``, ``local_files_only``, ``token``, ``force_download`` and ``subfolder`` as in
        ``convbert.interop.hub``); other ``kwargs`` override the saved settings."""
        from convbert.interop.hub import pop_hub_kwargs, resolve_pretrained

        directory = resolve_pretrained(pretrained_directory, for_what="tokenizer", **pop_hub_kwargs(kwargs))
        saved = read_saved_config(directory, cls.config_keys())
        saved["added_tokens_decoder"] = read_added_tokens(directory, saved)
        saved["chat_template"] = load_templates(directory, saved.get("chat_template"))
        return cls._from_directory(directory, {**saved, **kwargs})

    @classmethod
    def config_keys(cls) -> set[str]:
        import inspect

        parameters = inspect.signature(cls.__init__).parameters.values()
        return {p.name for p in parameters if p.name not in ("self", "vocab") and p.kind is not p.VAR_KEYWORD}

    @classmethod
    def _from_directory(cls, directory: Path, kwargs: dict[str, Any]) -> TokenizerBase:
        """vocab.txt, or the WordPiece vocabulary (and normaliser settings) of tokenizer.json: transformers 5
        saves only the latter."""
        vocab_file = directory / VOCAB_FILE
        if vocab_file.is_file():
            return cls(vocab_file=vocab_file, **kwargs)
        tokenizer_file = directory / "tokenizer.json"
        if tokenizer_file.is_file():
            vocab, settings = wordpiece_of_tokenizer_json(tokenizer_file)
            return cls(vocab=vocab, **{**settings, **kwargs})
        raise FileNotFoundError(f"neither {VOCAB_FILE} nor tokenizer.json in {str(directory)!r}")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(vocab_size={self.vocab_size}, model_max_length={self.model_max_length})"
        )


def read_saved_config(directory: Path, known: set[str]) -> dict[str, Any]:
    """Constructor arguments from tokenizer_config.json and special_tokens_map.json, unknown keys ignored."""
    config: dict[str, Any] = {}
    for name in (CONFIG_FILE, SPECIAL_TOKENS_MAP_FILE):
        if (directory / name).is_file():
            config.update(json.loads((directory / name).read_text(encoding="utf-8")))
    for name in SPECIAL_TOKEN_ATTRIBUTES:  # Hugging Face may store a special token as {"content": ..., ...}
        if isinstance(config.get(name), dict):
            config[name] = added_token_from_dict(config[name]) if "content" in config[name] else None
    for name in ("extra_special_tokens", "additional_special_tokens"):
        if isinstance(config.get(name), list):
            config[name] = [added_token_from_dict(t) if isinstance(t, dict) else t for t in config[name]]
    if isinstance(config.get("extra_special_tokens"), dict):  # transformers 5's model-specific named tokens
        config.pop("extra_special_tokens")
    if not config.get("extra_special_tokens") and config.get("additional_special_tokens"):
        config["extra_special_tokens"] = config.pop("additional_special_tokens")
    return {
        key: value
        for key, value in config.items()
        if key in known and key not in ("vocab_file", "tokenizer_file")
    }


def _as_id_list(ids: Any) -> Any:
    """Accept lists, tuples, tensors and arrays of ids (or of id lists); return plain lists of int."""
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if isinstance(ids, int):
        return [ids]
    if not isinstance(ids, (list, tuple)):
        raise TypeError(f"token ids must be an int, a list of int or a tensor; got {describe_type(ids)}")
    if ids and (isinstance(ids[0], (list, tuple)) or hasattr(ids[0], "__len__")):
        return [_as_id_list(row) for row in ids]
    try:
        return [operator.index(index) for index in ids]
    except TypeError:
        raise TypeError(f"token ids must be ints; got {describe_type(ids)}") from None


def clean_up_tokenization(text: str) -> str:
    """Undo the spaces decoding puts before punctuation and English contractions (Hugging Face's rule)."""
    return (
        text.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
    )


def pad_features(
    rows: list[dict[str, list]],
    padding: str | None,
    max_length: int | None,
    pad_to_multiple_of: int | None,
    side: str,
    pad_token_id: int,
) -> None:
    """Pad each row in place to the batch's longest (or ``max_length``), rounded up to ``pad_to_multiple_of``.

    Padding positions get ``pad_token_id``, token type 0, attention 0 and special-token flag 1 (as in HF).
    """
    if padding is None or not rows:
        return
    target = max(len(row["input_ids"]) for row in rows) if padding == "longest" else max_length
    if pad_to_multiple_of and target % pad_to_multiple_of:
        target += pad_to_multiple_of - target % pad_to_multiple_of
    fill = {"input_ids": pad_token_id, "token_type_ids": 0, "attention_mask": 0, "special_tokens_mask": 1}
    for row in rows:
        missing = target - len(row["input_ids"])
        if missing <= 0:
            continue
        for key, value in row.items():
            pad = [fill.get(key, 0)] * missing
            row[key] = value + pad if side == "right" else pad + value


# ------------------------------------------------------------------------------------------------------------
# The pure-Python tokenizer.


class ConvBertTokenizer(TokenizerBase):
    """ConvBERT's (= BERT's) WordPiece tokenizer in pure Python; identical output to transformers' pure-Python
    ``BertTokenizerLegacy``.

    With no ``vocab_file`` it uses the bert-base-uncased vocabulary shipped in ``convbert/data/vocab``.
    Special tokens written in the text (e.g. "[SEP]") are kept whole, as in Hugging Face.

    Where the two Hugging Face BERT tokenizers disagree, this one follows the pure-Python one:

    - pair truncation with ``longest_first`` and an odd budget: when both texts must be cut to share
      ``max_length - 3`` tokens, the *first* text keeps the extra token (the fast tokenizer gives it to the
      longer text, the second one on a tie);
    - characters that the running Python's Unicode tables and the Rust ``tokenizers`` tables classify
      differently (code points unassigned here are dropped as control characters; marks, format characters and
      punctuation added in recent Unicode versions), and a final capital sigma, which ``str.lower`` turns into
      "ς" where Rust gives "σ";
    - ``decode`` cleans up tokenization spaces by default (``clean_up_tokenization_spaces=True``).

    Unlike ``BertTokenizerLegacy``, it returns ``token_type_ids`` by default (the model takes them), and a
    truncation that cannot be met raises ValueError instead of silently returning an over-long sequence.

    ``return_overflowing_tokens=True`` follows Hugging Face's *fast* tokenizer, not the legacy one: one row
    per window with ``overflow_to_sample_mapping`` (the legacy format, an ``overflowing_tokens`` list per
    sequence, is not offered), the Rust library's windows for every strategy (the legacy tokenizer refuses
    longest_first on pairs), and so, in an odd-budget longest_first pair cut, the Rust split of the budget.
    The windows are cut here in Python and match ``ConvBertTokenizerFast`` and transformers' fast
    ``BertTokenizer`` row for row.
    """

    def __init__(
        self,
        vocab_file: PathLike | None = None,
        do_lower_case: bool = True,
        do_basic_tokenize: bool = True,
        never_split: Iterable[str] | None = None,
        unk_token: str | AddedToken = "[UNK]",
        sep_token: str | AddedToken = "[SEP]",
        pad_token: str | AddedToken = "[PAD]",
        cls_token: str | AddedToken = "[CLS]",
        mask_token: str | AddedToken = "[MASK]",
        tokenize_chinese_chars: bool = True,
        strip_accents: bool | None = None,
        model_max_length: int = 512,
        clean_up_tokenization_spaces: bool = True,
        padding_side: str = "right",
        truncation_side: str = "right",
        *,
        vocab: Mapping[str, int] | None = None,
        bos_token: str | AddedToken | None = None,
        eos_token: str | AddedToken | None = None,
        extra_special_tokens: Sequence[str | AddedToken] | None = None,
        additional_special_tokens: Sequence[str | AddedToken] | None = None,
        added_tokens_decoder: Mapping[int | str, AddedToken | Mapping[str, Any]] | None = None,
        chat_template: str | dict[str, str] | None = None,
        **unused: Any,
    ) -> None:
        super().__init__(
            unk_token=unk_token,
            sep_token=sep_token,
            pad_token=pad_token,
            cls_token=cls_token,
            mask_token=mask_token,
            model_max_length=model_max_length,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            padding_side=padding_side,
            truncation_side=truncation_side,
            bos_token=bos_token,
            eos_token=eos_token,
            extra_special_tokens=extra_special_tokens or additional_special_tokens,
            chat_template=chat_template,
            unused=unused,
        )
        if vocab is None:
            path = default_vocab_file() if vocab_file is None else Path(vocab_file)
            if not path.is_file():
                raise FileNotFoundError(f"no vocabulary file at {str(path)!r}")
            vocab = load_vocab(path)
        self.vocab: dict[str, int] = dict(vocab)
        # Added tokens missing from the vocabulary (special tokens included) get the ids after it.
        self._extra_vocab: dict[str, int] = {}
        self.ids_to_tokens = {index: token for token, index in self.vocab.items()}
        self.do_lower_case = do_lower_case
        self.do_basic_tokenize = do_basic_tokenize
        self.never_split = list(never_split) if never_split is not None else None
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.strip_accents = strip_accents
        self.basic_tokenizer = BasicTokenizer(
            do_lower_case, never_split, tokenize_chinese_chars, strip_accents
        )
        self.wordpiece = WordPiece(self.vocab, str(unk_token))
        self._init_added_tokens(read_added_tokens(Path(), {"added_tokens_decoder": added_tokens_decoder}))

    def _register(self, tokens: list[AddedToken]) -> int:
        """Give each token its vocabulary id, or the next free one; as transformers' pure-Python tokenizer,
        a non-special token is lower-cased first when the tokenizer lower-cases text."""
        new = 0
        for token in tokens:
            if self.do_lower_case and token.normalized and not token.special:
                token = AddedToken(token.content.lower(), token.single_word, token.lstrip, token.rstrip,
                                   token.normalized, token.special)
            index = self.vocab.get(token.content, self._extra_vocab.get(token.content))
            if index is None:
                index = self._extra_vocab[token.content] = len(self.vocab) + len(self._extra_vocab)
                self.ids_to_tokens[index] = token.content
                new += 1
            self._added_tokens_decoder[index] = token
        return new

    def _refresh(self) -> None:
        """Rebuild the added-token matcher and the special-token sets after any of them changed."""
        added = {token.content: token for token in self._added_tokens_decoder.values()}
        self._added_by_content = added
        longest_first = sorted(added, key=len, reverse=True)
        self._special_pattern = (
            re.compile("(" + "|".join(map(re.escape, longest_first)) + ")") if longest_first else None
        )
        self._special_first_chars = frozenset(token[0] for token in longest_first)
        self._special_ids = self._skipped_ids()
        self._keep_whole = frozenset(self.basic_tokenizer.never_split.union(self.all_special_tokens))
        if self.unk_token is not None:
            self.wordpiece.unk_token = self.unk_token

    def _config(self) -> dict[str, Any]:
        return {
            **super()._config(),
            "do_lower_case": self.do_lower_case,
            "do_basic_tokenize": self.do_basic_tokenize,
            "never_split": self.never_split,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "strip_accents": self.strip_accents,
        }

    @property
    def vocab_size(self) -> int:
        """Size of vocab.txt (special tokens appended to it are counted by ``len(tokenizer)`` only)."""
        return len(self.vocab)

    def get_vocab(self) -> dict[str, int]:
        return {**self.vocab, **self._extra_vocab}

    def _base_vocab(self) -> dict[str, int]:
        return self.vocab

    def _token_to_id(self, token: str) -> int:
        index = self._extra_vocab.get(token, self.vocab.get(token))
        if index is None and self.unk_token is not None:
            return self.vocab.get(self.unk_token, self._extra_vocab.get(self.unk_token))
        return index

    def _id_to_token(self, index: int) -> str | None:
        return self.ids_to_tokens.get(index, self.unk_token)

    def tokenize(self, text: str) -> list[str]:
        """Text to WordPiece tokens, without [CLS]/[SEP]; special and added tokens written in the text stay
        whole (matched in the raw text, longest first, with their lstrip/rstrip/single_word flags applied as
        transformers' pure-Python tokenizer applies them)."""
        if not isinstance(text, str):
            raise TypeError(f"tokenize takes a str, got {describe_type(text)}")
        if self._special_pattern is None or self._special_first_chars.isdisjoint(text):
            return self._tokenize_chunk(text)
        parts = self._special_pattern.split(text)  # odd positions hold added tokens
        whole = [i % 2 == 1 for i in range(len(parts))]
        for i in range(1, len(parts), 2):
            token = self._added_by_content[parts[i]]
            if token.rstrip:
                parts[i + 1] = parts[i + 1].lstrip()
            if token.lstrip:
                parts[i - 1] = parts[i - 1].rstrip()
            if token.single_word:  # inside a word it is just text
                if parts[i - 1] and parts[i - 1][-1] != " " and not whole[i - 1]:
                    parts[i - 1], parts[i] = parts[i - 1] + parts[i], ""
                elif parts[i + 1] and parts[i + 1][0] != " ":
                    parts[i + 1], parts[i] = parts[i] + parts[i + 1], ""
        tokens: list[str] = []
        for part, keep in zip(parts, whole, strict=True):
            if keep and part:
                tokens.append(part)
            elif part:
                tokens.extend(self._tokenize_chunk(part))
        return tokens

    def _tokenize_chunk(self, text: str) -> list[str]:
        if not self.do_basic_tokenize:
            return [piece for word in text.split() for piece in self.wordpiece.pieces(word)]
        tokens: list[str] = []
        never_split = self.basic_tokenizer.never_split
        for word in self.basic_tokenizer.words(text, self._keep_whole):
            if word in never_split:
                tokens.append(word)
            else:
                tokens.extend(self.wordpiece.pieces(word))
        return tokens

    def _ids(self, text: TextOrWords, is_split_into_words: bool) -> list[int]:
        tokens = (
            [token for word in text for token in self.tokenize(word)]
            if is_split_into_words
            else self.tokenize(text)
        )
        return [self._token_to_id(token) for token in tokens]

    def _encode(self, examples: list, batched: bool, options: EncodeOptions) -> BatchEncoding:
        if options.return_offsets_mapping:
            raise NotImplementedError("return_offsets_mapping needs ConvBertTokenizerFast")
        rows: list[dict[str, list[int]]] = []
        sample: list[int] = []  # each row's example, for overflow_to_sample_mapping
        for index, (first, second) in enumerate(examples):
            ids = self._ids(first, options.is_split_into_words)
            pair_ids = None if second is None else self._ids(second, options.is_split_into_words)
            if not options.return_overflowing_tokens:
                rows.append(self._features(ids, pair_ids, options))
                continue
            special = self.num_special_tokens_to_add(second is not None) if options.add_special_tokens else 0
            windows = overflow_windows(
                ids,
                pair_ids,
                max_length=options.max_length,
                special=special,
                strategy=options.truncation,
                stride=options.stride,
                side=self.truncation_side,
                example=index,
            )
            for part, pair_part in windows:
                rows.append(self._assemble(part, pair_part, options))
                sample.append(index)
        pad_features(
            rows,
            options.padding,
            options.max_length,
            options.pad_to_multiple_of,
            options.padding_side,
            self.pad_token_id,
        )
        if not rows:
            keys = [key for key, wanted in self._wanted(options).items() if wanted]
            keys += [key for key, wanted in self._extra_keys(options).items() if wanted]
            return BatchEncoding({key: [] for key in keys})
        if not batched and not options.return_overflowing_tokens:  # the common case, kept cheap
            data = rows[0]
            if options.return_length:  # [n] as in Hugging Face (tensors add that axis themselves)
                length = len(data["input_ids"])
                data["length"] = length if options.return_tensors else [length]
            return BatchEncoding(as_tensors(data, options.return_tensors, batched=False))
        data = {key: [row[key] for row in rows] for key in rows[0]}
        return BatchEncoding(shape_output(data, batched, options, sample))

    @staticmethod
    def _extra_keys(options: EncodeOptions) -> dict[str, bool]:
        return {
            "length": options.return_length,
            "overflow_to_sample_mapping": options.return_overflowing_tokens,
        }

    @staticmethod
    def _wanted(options: EncodeOptions) -> dict[str, bool]:
        return {
            "input_ids": True,
            "token_type_ids": options.return_token_type_ids,
            "attention_mask": options.return_attention_mask,
            "special_tokens_mask": options.return_special_tokens_mask,
        }

    def _features(
        self, ids: list[int], pair_ids: list[int] | None, options: EncodeOptions
    ) -> dict[str, list[int]]:
        if options.truncation is not None:
            special = (
                self.num_special_tokens_to_add(pair_ids is not None) if options.add_special_tokens else 0
            )
            excess = len(ids) + len(pair_ids or ()) + special - options.max_length
            if excess > 0:
                ids, pair_ids = truncate_pair(ids, pair_ids, excess, options.truncation, self.truncation_side)
        return self._assemble(ids, pair_ids, options)

    def _assemble(
        self, ids: list[int], pair_ids: list[int] | None, options: EncodeOptions
    ) -> dict[str, list[int]]:
        """The model inputs of already-truncated ids: special tokens, token types, masks."""
        if options.add_special_tokens:
            input_ids = self.build_inputs_with_special_tokens(ids, pair_ids)
            type_ids = self.create_token_type_ids_from_sequences(ids, pair_ids)
            special_mask = self.get_special_tokens_mask(ids, pair_ids)
        else:
            input_ids = ids + (pair_ids or [])
            type_ids = special_mask = [0] * len(input_ids)
        values = {
            "input_ids": input_ids,
            "token_type_ids": type_ids,
            "attention_mask": [1] * len(input_ids),
            "special_tokens_mask": special_mask,
        }
        return {key: values[key] for key, wanted in self._wanted(options).items() if wanted}

    def _decode_one(self, ids: list[int], skip_special_tokens: bool) -> str:
        skip = self._special_ids if skip_special_tokens else ()
        tokens = [self._id_to_token(index) for index in ids if index not in skip]
        return " ".join(tokens).replace(" ##", "").strip()

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        """Join tokens with spaces and glue "##" pieces to the word before them."""
        return " ".join(tokens).replace(" ##", "").strip()


def truncate_pair(
    ids: list[int], pair_ids: list[int] | None, excess: int, strategy: str, side: str = "right"
) -> tuple[list[int], list[int] | None]:
    """Remove ``excess`` tokens the way Hugging Face's pure-Python tokenizers do.

    ``longest_first`` on a pair first trims the longer text down to the shorter one, then splits the remaining
    cut between both, the second text taking the larger half when it is odd; so with an odd budget the *first*
    text keeps the extra token.  (The Rust ``tokenizers`` library gives it to the longer text, the second one
    on a tie; ``ConvBertTokenizerFast`` follows that.)
    """

    def cut(seq: list[int], n: int) -> list[int]:
        if n <= 0:
            return seq
        return seq[:-n] if side == "right" else seq[n:]

    if strategy == "only_first" or (strategy == "longest_first" and pair_ids is None):
        if excess > len(ids):
            raise ValueError(
                f"cannot truncate: {excess} tokens must go but the first sequence has only {len(ids)}; "
                "raise max_length or use truncation='longest_first'"
            )
        return cut(ids, excess), pair_ids
    if strategy == "only_second":
        if pair_ids is None:
            raise ValueError("truncation='only_second' needs a text pair; this input is a single sequence")
        if excess > len(pair_ids):
            raise ValueError(
                f"cannot truncate: {excess} tokens must go but the second sequence has only {len(pair_ids)}; "
                "raise max_length or use truncation='longest_first'"
            )
        return ids, cut(pair_ids, excess)
    first_cut = min(abs(len(pair_ids) - len(ids)), excess)
    rest = excess - first_cut
    if len(ids) > len(pair_ids):
        from_ids, from_pair = first_cut + rest // 2, rest - rest // 2
    else:
        from_ids, from_pair = rest // 2, first_cut + rest - rest // 2
    return cut(ids, from_ids), cut(pair_ids, from_pair)


# ------------------------------------------------------------------------------------------------------------
# Overflowing windows ("doc stride"), cut exactly as the Rust ``tokenizers`` library cuts them.


def window_sizes(
    n_first: int,
    n_second: int | None,
    *,
    max_length: int,
    special: int,
    strategy: str,
    stride: int,
    example: int = 0,
) -> tuple[int, int | None]:
    """How many tokens of each text one window holds (a text's own length if it is not cut).

    The Rust library's truncation with overflow: the room is ``max_length - special``; ``longest_first``
    cuts a single text to the room, and for a pair cuts only the longer text when the shorter fits in half
    the room, else both to half of it (the longer, or the second on a tie, keeping an odd token);
    ``only_first``/``only_second`` cut that text to what the other leaves.  A text that is cut must hold
    more than ``stride`` tokens per window; otherwise ValueError naming the example and the fix.
    """
    room = max_length - special
    total = n_first + (n_second or 0)
    if total <= room:
        return n_first, n_second
    specials = f" minus {special} special tokens" if special else ""
    if strategy == "only_second" and n_second is None:
        raise ValueError(
            f"example {example}: truncation='only_second' needs a text pair; this input is a single sequence "
            "(truncation=True cuts a single text)"
        )
    if strategy == "longest_first" and n_second is None:
        sizes: tuple[int, int | None] = (room, None)
    elif strategy == "longest_first":
        short, long = sorted((n_first, n_second))
        long = short if short > room else max(short, room - short)
        if short + long > room:
            short, long = room // 2, room // 2 + room % 2
        sizes = (long, short) if n_first > n_second else (short, long)
    else:
        second = strategy == "only_second"
        target, other = (n_second, n_first) if second else (n_first, n_second or 0)
        size = target - (total - room)
        name, other_name = ("second", "first") if second else ("first", "second")
        if size <= 0:
            raise ValueError(
                f"example {example}: cannot truncate: truncation='{strategy}' must remove {total - room} "
                f"tokens but the {name} text has only {target}; raise max_length or use "
                "truncation='longest_first'"
            )
        if size <= stride:
            raise ValueError(
                f"example {example}: each window has room for {_tokens(size)} of the {name} text "
                f"(max_length={max_length}{specials} minus the {_tokens(other)} of the {other_name} text), "
                f"not more than stride={stride}, so no window would add new tokens; lower stride, raise "
                f"max_length or shorten the {other_name} text"
            )
        return (n_first, size) if second else (size, n_second)
    for n, size, name in ((n_first, sizes[0], "first"), (n_second, sizes[1], "second")):
        if n is not None and size < n and size <= stride:
            raise ValueError(
                f"example {example}: truncation='longest_first' with max_length={max_length}{specials} "
                f"leaves room for {_tokens(size)} of the {name} text per window, not more than "
                f"stride={stride}, so no window would add new tokens; lower stride, raise max_length, or use "
                "truncation='only_second' to keep the first text whole"
            )
    return sizes


def _tokens(n: int) -> str:
    return f"{n} token" if n == 1 else f"{n} tokens"


def window_spans(length: int, size: int, stride: int, side: str = "right") -> list[tuple[int, int]]:
    """``(start, stop)`` of each window of ``size`` tokens over ``length`` tokens, each overlapping the one
    before by ``stride``; from the start for ``side="right"`` truncation, from the end for "left"."""
    if size >= length:
        return [(0, length)]
    step = size - stride
    spans = []
    if side == "right":
        for start in range(0, length, step):
            spans.append((start, min(start + size, length)))
            if start + size >= length:
                break
    else:
        for stop in range(length, 0, -step):
            spans.append((max(stop - size, 0), stop))
            if stop <= size:
                break
    return spans


def overflow_windows(
    ids: list[int],
    pair_ids: list[int] | None,
    *,
    max_length: int,
    special: int,
    strategy: str,
    stride: int,
    side: str = "right",
    example: int = 0,
) -> list[tuple[list[int], list[int] | None]]:
    """The (first, second) token ids of each row that ``return_overflowing_tokens`` gives one example, in
    the fast tokenizer's order: the first windows of both texts, then each later window of the first text
    with every window of the second, then the first window of the first text with each later window of the
    second.  (When only one text is cut, that is simply its windows in order, the other text repeated.)"""
    first_size, second_size = window_sizes(
        len(ids),
        None if pair_ids is None else len(pair_ids),
        max_length=max_length,
        special=special,
        strategy=strategy,
        stride=stride,
        example=example,
    )
    firsts = [ids[start:stop] for start, stop in window_spans(len(ids), first_size, stride, side)]
    if pair_ids is None:
        return [(part, None) for part in firsts]
    seconds = [pair_ids[start:stop] for start, stop in window_spans(len(pair_ids), second_size, stride, side)]
    order = [(0, 0)]
    order += [(i, j) for i in range(1, len(firsts)) for j in range(len(seconds))]
    order += [(0, j) for j in range(1, len(seconds))]
    return [(firsts[i], seconds[j]) for i, j in order]
