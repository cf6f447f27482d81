"""Special tokens and added tokens, with transformers' API and saved format.

Hugging Face code sets ``tokenizer.eos_token``, calls ``add_tokens``/``add_special_tokens`` before resizing a
model's embeddings, and saves the result as ``added_tokens_decoder`` in tokenizer_config.json (plus
added_tokens.json for ids past the vocabulary).  This mixin keeps that bookkeeping for both convbert
tokenizers; each tokenizer only says how a token joins its vocabulary (``_register``) and what to refresh
afterwards (``_refresh``).  It imports neither ``tokenizers`` nor ``transformers``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ADDED_TOKENS_FILE = "added_tokens.json"
# Hugging Face's order; BERT uses the last five, bos/eos are None unless given.
SPECIAL_TOKEN_ATTRIBUTES = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)


class AddedToken:
    """A token matched in the raw text before WordPiece and never split (the fields of
    ``tokenizers.AddedToken``, whose instances are accepted wherever this class is).

    ``normalized``: matched after normalisation (lower-casing) rather than in the raw text; defaults to
    ``not special``, as in Hugging Face.
    """

    __slots__ = ("content", "lstrip", "normalized", "rstrip", "single_word", "special")

    def __init__(
        self,
        content: str,
        single_word: bool = False,
        lstrip: bool = False,
        rstrip: bool = False,
        normalized: bool | None = None,
        special: bool = False,
    ) -> None:
        if not isinstance(content, str) or not content:
            raise TypeError(f"an added token must be a non-empty str, got {content!r}")
        self.content = content
        self.single_word = bool(single_word)
        self.lstrip = bool(lstrip)
        self.rstrip = bool(rstrip)
        self.normalized = (not special) if normalized is None else bool(normalized)
        self.special = bool(special)

    def as_dict(self) -> dict[str, Any]:
        """transformers' JSON form (one entry of ``added_tokens_decoder``)."""
        return {name: getattr(self, name) for name in sorted(self.__slots__)}

    def __str__(self) -> str:
        return self.content

    def __repr__(self) -> str:
        flags = ", ".join(f"{name}={getattr(self, name)}" for name in self.__slots__[1:])
        return f"AddedToken({self.content!r}, {flags})"

    def __eq__(self, other: object) -> bool:
        if not hasattr(other, "content"):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name, None) for name in self.__slots__)

    def __hash__(self) -> int:
        return hash(self.content)


def as_added_token(value: Any, special: bool = False) -> AddedToken:
    """A str or an AddedToken-like object (ours or ``tokenizers``') as our AddedToken; ``special=True``
    marks it special without changing its other flags."""
    if isinstance(value, str):
        return AddedToken(value, special=special)
    if not isinstance(getattr(value, "content", None), str):
        raise TypeError(f"tokens must be str or AddedToken, got {type(value).__name__}")
    return AddedToken(
        value.content,
        single_word=value.single_word,
        lstrip=value.lstrip,
        rstrip=value.rstrip,
        normalized=value.normalized,
        special=special or value.special,
    )


def added_token_from_dict(entry: Mapping[str, Any]) -> AddedToken:
    """An AddedToken from its JSON form (keys other than AddedToken's, e.g. "__type", are ignored)."""
    return AddedToken(**{key: entry[key] for key in AddedToken.__slots__ if key in entry})


def read_added_tokens(directory: Path, config: Mapping[str, Any]) -> dict[int, AddedToken]:
    """The added tokens a saved folder declares: ``added_tokens_decoder`` of tokenizer_config.json, and
    added_tokens.json (older transformers) for any id it does not list."""
    decoder = {
        int(index): entry if isinstance(entry, AddedToken) else added_token_from_dict(entry)
        for index, entry in (config.get("added_tokens_decoder") or {}).items()
    }
    path = directory / ADDED_TOKENS_FILE
    if path.is_file():
        for content, index in json.loads(path.read_text(encoding="utf-8")).items():
            decoder.setdefault(int(index), AddedToken(content))
    return dict(sorted(decoder.items()))


class _SpecialToken:
    """``tokenizer.eos_token`` etc.: the token as a str, or None; settable (to a token of the vocabulary:
    ``add_special_tokens`` adds new ones)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, tokenizer: Any, owner: type | None = None) -> Any:
        if tokenizer is None:
            return self
        value = tokenizer._special_tokens_map.get(self.name)
        return None if value is None else str(value)

    def __set__(self, tokenizer: Any, value: Any) -> None:
        tokenizer._set_special_token(self.name, value)


class _SpecialTokenId:
    """``tokenizer.eos_token_id`` etc.: the id of that token, or None; setting an id sets the token."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.token_name = name[: -len("_id")]

    def __get__(self, tokenizer: Any, owner: type | None = None) -> Any:
        if tokenizer is None:
            return self
        token = getattr(tokenizer, self.token_name)
        return None if token is None else tokenizer._token_to_id(token)

    def __set__(self, tokenizer: Any, index: int | None) -> None:
        token = None if index is None else tokenizer._id_to_token(index)
        tokenizer._set_special_token(self.token_name, token)


class AddedTokensMixin:
    """Named special tokens, ``extra_special_tokens`` and added tokens; mixed into ``TokenizerBase``.

    A subclass keeps ``_added_tokens_decoder`` ({id: AddedToken}: every added or special token, including
    special tokens already in the vocabulary, as transformers lists them), implements ``_register`` (give
    tokens ids, return how many are new) and ``_refresh`` (rebuild what depends on the special and added
    tokens), and calls ``_init_added_tokens`` once its vocabulary exists.
    """

    bos_token = _SpecialToken()
    eos_token = _SpecialToken()
    unk_token = _SpecialToken()
    sep_token = _SpecialToken()
    pad_token = _SpecialToken()
    cls_token = _SpecialToken()
    mask_token = _SpecialToken()
    bos_token_id = _SpecialTokenId()
    eos_token_id = _SpecialTokenId()
    unk_token_id = _SpecialTokenId()
    sep_token_id = _SpecialTokenId()
    pad_token_id = _SpecialTokenId()
    cls_token_id = _SpecialTokenId()
    mask_token_id = _SpecialTokenId()

    SPECIAL_TOKENS_ATTRIBUTES = SPECIAL_TOKEN_ATTRIBUTES

    _special_tokens_map: dict[str, Any]
    _extra_special_tokens: list[Any]
    _added_tokens_decoder: dict[int, AddedToken]

    # -- supplied by the tokenizer ---------------------------------------------------------------------------

    def _register(self, tokens: list[AddedToken]) -> int:
        raise NotImplementedError

    def _refresh(self) -> None:
        raise NotImplementedError

    # -- construction ----------------------------------------------------------------------------------------

    def _store_special_tokens(self, tokens: Mapping[str, Any], extra: Iterable[Any] | None) -> None:
        """Keep the constructor's special tokens (no vocabulary exists yet, so nothing is registered)."""
        self._special_tokens_map = {}
        for name in SPECIAL_TOKEN_ATTRIBUTES:
            value = tokens.get(name)
            if value is not None and not (isinstance(value, str) and value) and not hasattr(value, "content"):
                raise TypeError(f"{name} must be a non-empty str, an AddedToken or None, got {value!r}")
            self._special_tokens_map[name] = value
        self._extra_special_tokens = [as_added_token(token, special=True) for token in (extra or ())]
        self._added_tokens_decoder = {}

    def _init_added_tokens(self, saved: Mapping[int, AddedToken] | None = None) -> None:
        """Register the special tokens (those missing from the vocabulary get the next ids) and the tokens a
        saved folder added, at their saved ids."""
        for index, token in sorted((saved or {}).items()):
            self._register_saved(index, token)
        named = [self._special_tokens_map[name] for name in SPECIAL_TOKEN_ATTRIBUTES]
        specials = [as_added_token(token, special=True) for token in named if token is not None]
        self._register(specials + self._extra_special_tokens)
        self._refresh()

    def _register_saved(self, index: int, token: AddedToken) -> None:
        """Put a saved added token back at its id, the one the model's embeddings hold it at (a token the
        vocabulary already has keeps its vocabulary id: the vocabulary file is the authority)."""
        if not self._register([token]):
            return
        got = self._token_to_id(token.content)
        if got != index:
            raise ValueError(
                f"saved added token {token.content!r} has id {index}, but this vocabulary gives it {got}; "
                "the folder's vocabulary and added tokens do not belong together"
            )

    # -- special tokens --------------------------------------------------------------------------------------

    def _set_special_token(self, name: str, value: Any) -> None:
        if value is not None and not (isinstance(value, str) and value) and not hasattr(value, "content"):
            raise TypeError(f"{name} must be a non-empty str, an AddedToken or None, got {value!r}")
        self._special_tokens_map[name] = value  # as in transformers, a token new to the vocabulary maps to
        self._refresh()  # the unknown id until add_special_tokens adds it

    @property
    def special_tokens_map(self) -> dict[str, str]:
        """The named special tokens that are set, as str (transformers 5 lists the extra ones apart)."""
        return {name: str(value) for name, value in self._special_tokens_map.items() if value is not None}

    @property
    def extra_special_tokens(self) -> list[str]:
        """Special tokens beyond the named ones (a copy: change them with ``add_special_tokens``)."""
        return [str(token) for token in self._extra_special_tokens]

    @extra_special_tokens.setter
    def extra_special_tokens(self, tokens: Iterable[Any]) -> None:
        self._extra_special_tokens = [as_added_token(token, special=True) for token in tokens]
        self._register(list(self._extra_special_tokens))
        self._refresh()

    @property
    def extra_special_tokens_ids(self) -> list[int]:
        return [self._token_to_id(token) for token in self.extra_special_tokens]

    @extra_special_tokens_ids.setter
    def extra_special_tokens_ids(self, ids: Iterable[int]) -> None:
        self.extra_special_tokens = [self._id_to_token(index) for index in ids]

    @property
    def additional_special_tokens(self) -> list[str]:
        """transformers 4's name for ``extra_special_tokens``."""
        return self.extra_special_tokens

    @property
    def all_special_tokens(self) -> list[str]:
        """The named special tokens that are set, in Hugging Face's order, then the extra ones."""
        named = [str(value) for value in self._special_tokens_map.values() if value is not None]
        return list(dict.fromkeys(named + self.extra_special_tokens))

    @property
    def all_special_ids(self) -> list[int]:
        return [self._token_to_id(token) for token in self.all_special_tokens]

    def _skipped_ids(self) -> frozenset[int]:
        """What ``skip_special_tokens`` drops: the special tokens and every token added as special."""
        flagged = (index for index, token in self._added_tokens_decoder.items() if token.special)
        return frozenset(self.all_special_ids).union(flagged)

    # -- added tokens ----------------------------------------------------------------------------------------

    @property
    def added_tokens_decoder(self) -> dict[int, AddedToken]:
        """{id: AddedToken} of every added and special token, sorted by id (a copy)."""
        return dict(sorted(self._added_tokens_decoder.items()))

    @property
    def added_tokens_encoder(self) -> dict[str, int]:
        return {token.content: index for index, token in sorted(self._added_tokens_decoder.items())}

    def get_added_vocab(self) -> dict[str, int]:
        return self.added_tokens_encoder

    def add_tokens(self, new_tokens: Any, special_tokens: bool = False) -> int:
        """Add tokens that are matched before WordPiece and kept whole; returns how many are new to the
        vocabulary (the model's embeddings must then grow to ``len(tokenizer)``)."""
        if not new_tokens:
            return 0
        if isinstance(new_tokens, str) or hasattr(new_tokens, "content"):
            new_tokens = [new_tokens]
        added = self._register([as_added_token(token, special=special_tokens) for token in new_tokens])
        self._refresh()
        return added

    def add_special_tokens(
        self, special_tokens_dict: Mapping[str, Any], replace_extra_special_tokens: bool = True
    ) -> int:
        """Set named special tokens (``{"eos_token": "[EOS]"}``) and/or ``extra_special_tokens`` (replacing
        the current list, or extending it with ``replace_extra_special_tokens=False``); tokens missing from
        the vocabulary are added.  Returns how many are new to the vocabulary."""
        tokens = dict(special_tokens_dict or {})
        if "additional_special_tokens" in tokens and not tokens.get("extra_special_tokens"):
            tokens["extra_special_tokens"] = tokens.pop("additional_special_tokens")
        allowed = (*SPECIAL_TOKEN_ATTRIBUTES, "extra_special_tokens")
        for key in tokens:
            if key not in allowed:
                raise ValueError(f"{key!r} is not a special token name; the names are {', '.join(allowed)}")
        new: list[AddedToken] = []
        for key, value in tokens.items():
            if key == "extra_special_tokens":
                if isinstance(value, str) or hasattr(value, "content"):
                    raise TypeError("extra_special_tokens must be a list of tokens")
                extra = [as_added_token(token, special=True) for token in value]
                if not replace_extra_special_tokens:
                    known = set(self.extra_special_tokens)
                    extra = self._extra_special_tokens + [
                        token for token in extra if token.content not in known
                    ]
                self._extra_special_tokens = extra
                new.extend(extra)
            else:
                if (
                    value is not None
                    and not (isinstance(value, str) and value)
                    and not hasattr(value, "content")
                ):
                    raise TypeError(f"{key} must be a non-empty str or an AddedToken, got {value!r}")
                self._special_tokens_map[key] = value
                if value is not None:
                    new.append(as_added_token(value, special=True))
        added = self._register(new)
        self._refresh()
        return added

    def _added_tokens_config(self) -> dict[str, Any]:
        """tokenizer_config.json's ``added_tokens_decoder`` (ids as strings, as transformers writes them)."""
        return {str(index): token.as_dict() for index, token in sorted(self._added_tokens_decoder.items())}

    def _save_added_tokens(self, directory: Path, vocab_size: int) -> tuple[str, ...]:
        """added_tokens.json: the tokens past the vocabulary, {content: id}, as transformers' slow tokenizers
        write it (older readers of a folder find them there)."""
        beyond = {
            token.content: index for index, token in self._added_tokens_decoder.items() if index >= vocab_size
        }
        if not beyond:
            return ()
        path = directory / ADDED_TOKENS_FILE
        path.write_text(
            json.dumps(beyond, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        return (str(path),)
