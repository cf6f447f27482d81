"""ConvBERT's WordPiece tokenizer on Hugging Face's Rust ``tokenizers`` library.

Same calling conventions as ``convbert.tokenization.ConvBertTokenizer`` (they share ``TokenizerBase``), but
the text pipeline runs in Rust, batches are encoded in parallel, and encodings carry character offsets and
word ids.  It is assembled from the same parts as transformers' ``BertTokenizer`` (BertNormalizer,
BertPreTokenizer, WordPiece, a [CLS]/[SEP] template, the WordPiece decoder) and gives the same output.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tokenizers import (
    AddedToken,
    Encoding,
    Tokenizer,
    decoders,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from tokenizers.models import WordPiece

from convbert.tokenization import (
    _SPECIAL_NAMES,
    VOCAB_FILE,
    BatchEncoding,
    EncodeOptions,
    PathLike,
    TokenizerBase,
    default_vocab_file,
    describe_type,
    load_vocab,
    shape_output,
    window_sizes,
)
from convbert.tokenization_added import AddedToken as ConvBertAddedToken
from convbert.tokenization_added import read_added_tokens

TOKENIZER_FILE = "tokenizer.json"
_SURROGATES = re.compile("[\ud800-\udfff]")


def build_backend(
    vocab: Mapping[str, int],
    special_tokens: list[str],
    unk_token: str,
    cls_token: str,
    sep_token: str,
    do_lower_case: bool = True,
    tokenize_chinese_chars: bool = True,
    strip_accents: bool | None = None,
) -> Tokenizer:
    """The ``tokenizers`` pipeline of transformers' ``BertTokenizer``: clean/lower/strip accents, split on
    whitespace and punctuation, WordPiece, then ``[CLS] A [SEP]`` / ``[CLS] A [SEP] B [SEP]``.

    Special tokens missing from ``vocab`` are appended to it (WordPiece must be able to emit the unknown
    token).
    """
    vocab = dict(vocab)
    for token in special_tokens:
        vocab.setdefault(token, len(vocab))
    backend = Tokenizer(WordPiece(vocab, unk_token=unk_token, max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=tokenize_chinese_chars,
        strip_accents=strip_accents,
        lowercase=do_lower_case,
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    _add_special_tokens(backend, special_tokens)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls_token}:0 $A:0 {sep_token}:0",
        pair=f"{cls_token}:0 $A:0 {sep_token}:0 $B:1 {sep_token}:1",
        special_tokens=[
            (cls_token, backend.token_to_id(cls_token)),
            (sep_token, backend.token_to_id(sep_token)),
        ],
    )
    return backend


def _add_special_tokens(backend: Tokenizer, tokens: list[str]) -> None:
    # Matched in the raw text before normalisation (so "[SEP]" is not lower-cased into "[sep]"), never split.
    backend.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in tokens])


def _blank_surrogates(sequence: Any) -> Any:
    """Replace lone surrogates (not encodable as UTF-8, so Rust refuses them) by U+FFFD, which the normaliser
    drops just as the Python tokenizer drops surrogates; string length, hence offsets, is unchanged."""
    if sequence is None:
        return None
    if isinstance(sequence, str):
        return _SURROGATES.sub("\ufffd", sequence)
    return [_SURROGATES.sub("\ufffd", word) for word in sequence]


class ConvBertTokenizerFast(TokenizerBase):
    """ConvBERT's (= BERT's) WordPiece tokenizer backed by the Rust ``tokenizers`` library; identical output
    to transformers' ``BertTokenizer`` (the tokenizers-backed one of transformers 5).

    With no ``vocab_file`` it uses the bert-base-uncased vocabulary shipped in ``convbert/data/vocab``.
    ``return_offsets_mapping=True`` adds character spans; the result's ``word_ids(i)`` maps tokens to words.

    Where the two Hugging Face BERT tokenizers disagree, this one follows the Rust one:

    - pair truncation with ``longest_first`` and an odd budget: when both texts must be cut to share
      ``max_length - 3`` tokens, the *longer* text keeps the extra token, the second one on a tie (the
      pure-Python tokenizer always gives it to the first);
    - Unicode: it uses the Rust library's (older) character tables, keeps code points it does not know as
      ordinary characters, and lower-cases a final capital sigma to "σ";
    - ``decode`` leaves tokenization spaces alone by default (``clean_up_tokenization_spaces=False``) and
      drops ids the vocabulary does not have;
    - only_first / only_second truncation that would leave the truncated text empty raises ValueError.

    ``return_overflowing_tokens=True`` returns the Rust library's windows exactly as transformers'
    ``BertTokenizer`` does (one row per window, ``overflow_to_sample_mapping``; ``word_ids(i)``,
    ``sequence_ids(i)`` and offsets per row).  Where that call would panic, give rows that overflow
    ``max_length`` (no room left for the text being cut) or ignore the request (no truncation), this one
    raises ValueError saying why and which example.

    As transformers' ``BertTokenizer``, an empty ``text_pair`` ("") outside a batch encodes the first text
    alone (``[CLS] text [SEP]``), while an empty second text inside a batch is a pair.  It raises
    TypeError/ValueError with a plain message on bad input.  The Rust tokenizer's truncation and
    padding settings are switched per call, so one instance should not be shared between threads.
    """

    empty_pair_is_single = True
    backend = "tokenizers"

    def __init__(
        self,
        vocab_file: PathLike | None = None,
        do_lower_case: bool = True,
        do_basic_tokenize: bool = True,
        never_split: Iterable[str] | None = None,
        unk_token: str | ConvBertAddedToken = "[UNK]",
        sep_token: str | ConvBertAddedToken = "[SEP]",
        pad_token: str | ConvBertAddedToken = "[PAD]",
        cls_token: str | ConvBertAddedToken = "[CLS]",
        mask_token: str | ConvBertAddedToken = "[MASK]",
        tokenize_chinese_chars: bool = True,
        strip_accents: bool | None = None,
        model_max_length: int = 512,
        clean_up_tokenization_spaces: bool = False,
        padding_side: str = "right",
        truncation_side: str = "right",
        *,
        vocab: Mapping[str, int] | None = None,
        tokenizer_file: PathLike | None = None,
        bos_token: str | ConvBertAddedToken | None = None,
        eos_token: str | ConvBertAddedToken | None = None,
        extra_special_tokens: Sequence[str | ConvBertAddedToken] | None = None,
        additional_special_tokens: Sequence[str | ConvBertAddedToken] | None = None,
        added_tokens_decoder: Mapping[int | str, ConvBertAddedToken | Mapping[str, Any]] | None = None,
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
        # BERT's five; other special tokens join as added tokens below, after any the folder saved.
        core = list(dict.fromkeys(str(getattr(self, name)) for name in _SPECIAL_NAMES))
        if not do_basic_tokenize or never_split:
            raise ValueError(
                "do_basic_tokenize=False and never_split need ConvBertTokenizer (the pure-Python one)"
            )
        if tokenizer_file is not None:
            backend = Tokenizer.from_file(str(tokenizer_file))
            _add_special_tokens(backend, core)
            if isinstance(
                backend.normalizer, normalizers.BertNormalizer
            ):  # the file, not the config, decides
                do_lower_case = backend.normalizer.lowercase
                tokenize_chinese_chars = backend.normalizer.handle_chinese_chars
                strip_accents = backend.normalizer.strip_accents
        else:
            if vocab is None:
                path = default_vocab_file() if vocab_file is None else Path(vocab_file)
                if not path.is_file():
                    raise FileNotFoundError(f"no vocabulary file at {str(path)!r}")
                vocab = load_vocab(path)
            backend = build_backend(
                vocab,
                core,
                unk_token=self.unk_token,
                cls_token=self.cls_token,
                sep_token=self.sep_token,
                do_lower_case=do_lower_case,
                tokenize_chinese_chars=tokenize_chinese_chars,
                strip_accents=strip_accents,
            )
        backend.no_truncation()
        backend.no_padding()
        self._backend = backend
        self._settings: tuple | None = (None, None)  # the truncation/padding currently set on the backend
        self.do_lower_case = do_lower_case
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.strip_accents = strip_accents
        self._unk_id = backend.token_to_id(self.unk_token)
        self._init_added_tokens(read_added_tokens(Path(), {"added_tokens_decoder": added_tokens_decoder}))

    def _register(self, tokens: list[ConvBertAddedToken]) -> int:
        """Add the tokens to the Rust tokenizer (which matches them before WordPiece); returns its count of
        tokens added (as transformers' fast tokenizer, one already in the vocabulary counts)."""
        added = 0
        for token in tokens:
            rust = AddedToken(token.content, single_word=token.single_word, lstrip=token.lstrip,
                              rstrip=token.rstrip, normalized=token.normalized, special=token.special)
            add = self._backend.add_special_tokens if token.special else self._backend.add_tokens
            added += add([rust])
            self._added_tokens_decoder[self._backend.token_to_id(token.content)] = token
        return added

    def _refresh(self) -> None:
        """Follow changed special tokens: the unknown id, and the [CLS]/[SEP] template."""
        unk = None if self.unk_token is None else self._backend.token_to_id(self.unk_token)
        self._unk_id = unk
        cls, sep = self.cls_token_id, self.sep_token_id
        if cls is not None and sep is not None:
            self._backend.post_processor = processors.TemplateProcessing(
                single=f"{self.cls_token}:0 $A:0 {self.sep_token}:0",
                pair=f"{self.cls_token}:0 $A:0 {self.sep_token}:0 $B:1 {self.sep_token}:1",
                special_tokens=[(self.cls_token, cls), (self.sep_token, sep)],
            )

    @property
    def backend_tokenizer(self) -> Tokenizer:
        """The underlying ``tokenizers.Tokenizer``."""
        return self._backend

    def _config(self) -> dict[str, Any]:
        return {
            **super()._config(),
            "do_lower_case": self.do_lower_case,
            "do_basic_tokenize": True,
            "never_split": None,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "strip_accents": self.strip_accents,
        }

    # -- vocabulary ------------------------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Size of the WordPiece vocabulary (special tokens appended to it are counted by ``len`` only)."""
        return self._backend.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> dict[str, int]:
        return self._backend.get_vocab(with_added_tokens=True)

    def _base_vocab(self) -> dict[str, int]:
        return self._backend.get_vocab(with_added_tokens=False)

    def _token_to_id(self, token: str) -> int:
        index = self._backend.token_to_id(token)
        return self._unk_id if index is None else index

    def _id_to_token(self, index: int) -> str | None:
        return self._backend.id_to_token(index) if index >= 0 else None

    # -- encoding --------------------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[str]:
        """Text to WordPiece tokens, without [CLS]/[SEP]; special tokens written in the text stay whole."""
        if not isinstance(text, str):
            raise TypeError(f"tokenize takes a str, got {describe_type(text)}")
        encoding = self(
            text, add_special_tokens=False, return_token_type_ids=False, return_attention_mask=False
        )
        return encoding.tokens()

    def _configure(self, options: EncodeOptions) -> None:
        truncation = None
        if options.truncation is not None:
            # Rust windows the overflow whenever truncating; the stride only matters when they are returned.
            stride = options.stride if options.return_overflowing_tokens else 0
            truncation = (options.max_length, options.truncation, self.truncation_side, stride)
        padding = None
        if options.padding is not None:
            length = options.max_length if options.padding == "max_length" else None
            padding = (length, options.padding_side, options.pad_to_multiple_of)
        if (truncation, padding) == self._settings:
            return
        if truncation is None:
            self._backend.no_truncation()
        else:
            max_length, strategy, direction, stride = truncation
            self._backend.enable_truncation(max_length, stride=stride, strategy=strategy, direction=direction)
        if padding is None:
            self._backend.no_padding()
        else:
            length, direction, multiple = padding
            self._backend.enable_padding(
                direction=direction,
                pad_id=self.pad_token_id,
                pad_type_id=self.pad_token_type_id,
                pad_token=self.pad_token,
                length=length,
                pad_to_multiple_of=multiple,
            )
        self._settings = (truncation, padding)

    def _run(self, examples: list, batched: bool, options: EncodeOptions) -> list[Encoding]:
        words = options.is_split_into_words
        if words:  # a tuple of words would read as a pair to the Rust side
            examples = [(list(first), None if second is None else list(second)) for first, second in examples]
        add = options.add_special_tokens
        if not batched:
            first, second = examples[0]
            return [self._backend.encode(first, second, is_pretokenized=words, add_special_tokens=add)]
        inputs = [first if second is None else (first, second) for first, second in examples]
        return self._backend.encode_batch(inputs, is_pretokenized=words, add_special_tokens=add)

    def _encode(self, examples: list, batched: bool, options: EncodeOptions) -> BatchEncoding:
        self._configure(options)
        try:
            try:
                encodings = self._run(examples, batched, options)
            except TypeError:  # inputs were validated, so this is Rust refusing lone surrogates
                examples = [
                    (_blank_surrogates(first), _blank_surrogates(second)) for first, second in examples
                ]
                encodings = self._run(examples, batched, options)
        except Exception as error:  # tokenizers reports truncation failures as a bare Exception
            if "Truncation error" not in str(error):
                raise
            self._explain_failure(examples, options, error)
        except BaseException as error:  # a Rust panic (pyo3's PanicException derives from BaseException)
            if type(error).__name__ != "PanicException":
                raise
            self._explain_failure(examples, options, error)
        sample = None
        if options.return_overflowing_tokens:  # each window its own row, as Hugging Face's fast tokenizer
            windows = [[encoding, *encoding.overflowing] for encoding in encodings]
            sample = [index for index, rows in enumerate(windows) for _ in rows]
            encodings = [row for rows in windows for row in rows]
        data = {"input_ids": [encoding.ids for encoding in encodings]}
        if options.return_token_type_ids:
            data["token_type_ids"] = [encoding.type_ids for encoding in encodings]
        if options.return_attention_mask:
            data["attention_mask"] = [encoding.attention_mask for encoding in encodings]
        if options.return_special_tokens_mask:
            data["special_tokens_mask"] = [encoding.special_tokens_mask for encoding in encodings]
        if options.return_offsets_mapping:
            data["offset_mapping"] = [encoding.offsets for encoding in encodings]
        return BatchEncoding(shape_output(data, batched, options, sample), encodings=encodings)

    def _explain_failure(self, examples: list, options: EncodeOptions, error: BaseException) -> None:
        """Turn Rust's truncation errors and panics into the ValueError the pure-Python tokenizer raises.

        Rust fails when only_first / only_second must cut more than the text has, and panics when a window
        would hold no more than ``stride`` tokens of the text it cuts (``_options`` already refused what
        fails for every text).  Neither says which example, so measure the texts and find it.
        """
        self._backend.no_truncation()
        self._backend.no_padding()
        self._settings = (None, None)
        words = options.is_split_into_words

        def lengths(texts: list) -> list[int]:
            texts = [_blank_surrogates(list(text) if words else text) for text in texts]
            encodings = self._backend.encode_batch(texts, is_pretokenized=words, add_special_tokens=False)
            return [len(encoding.ids) for encoding in encodings]

        pair = examples[0][1] is not None
        firsts = lengths([first for first, _ in examples])
        seconds = lengths([second for _, second in examples]) if pair else [None] * len(examples)
        special = self.num_special_tokens_to_add(pair) if options.add_special_tokens else 0
        for index, (n_first, n_second) in enumerate(zip(firsts, seconds, strict=True)):
            window_sizes(
                n_first,
                n_second,
                max_length=options.max_length,
                special=special,
                strategy=options.truncation,
                stride=options.stride if options.return_overflowing_tokens else 0,
                example=index,
            )
        raise ValueError(
            f"cannot truncate to max_length={options.max_length} with truncation='{options.truncation}'"
            + (f" and stride={options.stride}" if options.return_overflowing_tokens else "")
            + f": {error}"
        ) from None

    def _decode_one(self, ids: list[int], skip_special_tokens: bool) -> str:
        return self._backend.decode(
            [index for index in ids if index >= 0], skip_special_tokens=skip_special_tokens
        )

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Join tokens with the WordPiece decoder ("##" pieces glued to the word before them)."""
        return self._backend.decoder.decode(list(tokens))

    # -- saving, loading, training ---------------------------------------------------------------------------

    def _save_extra(self, directory: Path) -> tuple[str, ...]:
        self._backend.no_truncation()  # save the pipeline, not the last call's settings
        self._backend.no_padding()
        self._settings = (None, None)
        path = directory / TOKENIZER_FILE
        self._backend.save(str(path))
        return (str(path),)

    @classmethod
    def _from_directory(cls, directory: Path, kwargs: dict[str, Any]) -> ConvBertTokenizerFast:
        """Prefer tokenizer.json (the full pipeline); fall back to vocab.txt."""
        if (directory / TOKENIZER_FILE).is_file():
            return cls(tokenizer_file=directory / TOKENIZER_FILE, **kwargs)
        if (directory / VOCAB_FILE).is_file():
            return cls(vocab_file=directory / VOCAB_FILE, **kwargs)
        raise FileNotFoundError(f"neither {TOKENIZER_FILE} nor {VOCAB_FILE} in {str(directory)!r}")

    def train_new_from_iterator(
        self,
        text_iterator: Iterable[str] | Iterable[list[str]],
        vocab_size: int,
        *,
        min_frequency: int = 0,
        length: int | None = None,
        show_progress: bool = False,
    ) -> ConvBertTokenizerFast:
        """A new tokenizer with this one's settings and a WordPiece vocabulary of ``vocab_size`` trained on
        the texts (or batches of texts); special tokens come first: [PAD] [UNK] [CLS] [SEP] [MASK] = 0..4."""
        specials = list(
            dict.fromkeys([self.pad_token, self.unk_token, self.cls_token, self.sep_token, self.mask_token])
        )
        if not isinstance(vocab_size, int) or vocab_size <= len(specials):
            raise ValueError(
                f"vocab_size must be an int above {len(specials)} (the special tokens), got {vocab_size!r}"
            )
        backend = Tokenizer(WordPiece(unk_token=self.unk_token, max_input_chars_per_word=100))
        backend.normalizer = self._backend.normalizer
        backend.pre_tokenizer = self._backend.pre_tokenizer
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            show_progress=show_progress,
            special_tokens=specials,
            continuing_subword_prefix="##",
        )
        backend.train_from_iterator(_checked_texts(text_iterator), trainer=trainer, length=length)
        settings = {key: value for key, value in self._config().items() if key != "added_tokens_decoder"}
        return type(self)(vocab=backend.get_vocab(), **settings)


def _checked_texts(texts: Iterable[str] | Iterable[list[str]]) -> Iterator[str | list[str]]:
    """Check the corpus is an iterable now, and each text as the trainer pulls it."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Iterable):
        raise TypeError(
            "train_new_from_iterator needs an iterable of str (or of lists of str); "
            f"got {describe_type(texts)}"
        )
    return _each_checked(texts)


def _each_checked(texts: Iterable[str] | Iterable[list[str]]) -> Iterator[str | list[str]]:
    for item in texts:
        if not (
            isinstance(item, str) or (isinstance(item, list) and all(isinstance(text, str) for text in item))
        ):
            raise TypeError(f"training texts must be str or lists of str; found {describe_type(item)}")
        yield _blank_surrogates(item)
