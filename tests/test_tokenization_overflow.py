"""``return_overflowing_tokens`` / ``stride`` / ``return_length`` (question answering's "doc stride").

Both of our tokenizers follow Hugging Face's *fast* format (one row per window and
``overflow_to_sample_mapping``), so both are compared with transformers' tokenizers-backed ``BertTokenizer``
loaded on our shipped vocabulary:
real questions (SQuAD's, and Rotten Tomatoes sentences) against long Wikipedia paragraphs as contexts, under
every truncation strategy, both truncation sides, padded and not, batched and not, several max_length/stride
pairs.  A hypothesis test then checks slow == fast (the same rows, or the same error) on random texts and
settings, and Hugging Face's rows wherever ours succeed.
"""

from __future__ import annotations

import functools
import itertools
import shutil

import pytest
import torch
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from convbert.data import iter_corpus, load_qa, load_sentiment
from convbert.tokenization import ConvBertTokenizer, default_vocab_file, window_spans
from convbert.tokenization_fast import ConvBertTokenizerFast

transformers = pytest.importorskip("transformers")
from transformers import BertTokenizer  # noqa: E402

KEYS = (
    "input_ids",
    "token_type_ids",
    "attention_mask",
    "special_tokens_mask",
    "offset_mapping",
    "length",
    "overflow_to_sample_mapping",
)

SQUAD = load_qa("smoke")  # five real SQuAD v1.1 questions with their contexts
# Question-length sentences (12-22 tokens) added to them.
QUESTIONS = [example["question"] for example in SQUAD] + [
    row["text"] for row in load_sentiment("train") if 40 < len(row["text"]) < 90
][:400:50]
# Long real paragraphs (about 200-400 tokens each): the contexts that need several windows.
CONTEXTS = [text for text in itertools.islice(iter_corpus("wikipedia"), 300) if len(text) > 1200][:8]


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    """{side: (Hugging Face's fast BertTokenizer, ours slow, ours fast)} for right and left truncation."""
    directory = tmp_path_factory.mktemp("vocab")
    shutil.copy(default_vocab_file(), directory / "vocab.txt")
    transformers.logging.set_verbosity_error()
    out = {}
    for side in ("right", "left"):
        hf = BertTokenizer.from_pretrained(str(directory), model_max_length=512, truncation_side=side)
        out[side] = (hf, ConvBertTokenizer(truncation_side=side), ConvBertTokenizerFast(truncation_side=side))
    return out


def _plain(value):
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


# What each call returns without being asked, besides the keys asked for by name.
_DEFAULT_KEYS = ("token_type_ids", "attention_mask")


def _asked(**kwargs) -> dict:
    """Map return_* flags onto the keys they add, so ``compare`` knows which keys to expect."""
    keys = dict(kwargs)
    for flag, key in (
        ("return_special_tokens_mask", "special_tokens_mask"),
        ("return_offsets_mapping", "offset_mapping"),
        ("return_length", "length"),
        ("return_overflowing_tokens", "overflow_to_sample_mapping"),
    ):
        if kwargs.get(flag):
            keys[key] = 1
    return keys


def compare(tokenizers, side, *args, **kwargs) -> int:
    hf, slow, fast = tokenizers[side]
    expected = hf(*args, **kwargs)
    wanted = _asked(**kwargs)
    defaults = [key for key in _DEFAULT_KEYS if kwargs.get(f"return_{key}", True)]
    keys = [key for key in KEYS if key in wanted or key in defaults or key == "input_ids"]
    assert set(expected) == set(keys), (sorted(expected), keys)
    count = 0
    for name, ours in (("slow", slow), ("fast", fast)):
        call = dict(kwargs)
        mine = list(keys)
        if name == "slow" and call.pop("return_offsets_mapping", False):
            mine.remove("offset_mapping")  # character offsets need the fast tokenizer
        got = ours(*args, **call)
        assert set(got) == set(mine), (name, sorted(got), mine)
        for key in mine:
            assert _plain(got[key]) == _plain(expected[key]), (name, side, key, kwargs)
        if name == "fast" and kwargs.get("return_overflowing_tokens"):
            for row in range(len(_plain(expected["input_ids"]))):
                assert got.word_ids(row) == expected.word_ids(row), (row, kwargs)
                assert got.sequence_ids(row) == expected.sequence_ids(row), (row, kwargs)
                assert got.tokens(row) == expected.tokens(row), (row, kwargs)
        count += 1
    return count


# ------------------------------------------------------------------------------------------ agreement with HF
WINDOWS = [(64, 0), (64, 16), (100, 37), (128, 64), (384, 128)]  # (max_length, stride)
PADDINGS = [False, True, "max_length"]
# Strides below half the room: when both texts of a pair are cut (longest_first), each gets half of it.
HALF_ROOM_WINDOWS = [(64, 0), (64, 16), (100, 30), (160, 48)]


@pytest.mark.parametrize("side", ["right", "left"])
def test_question_answering_windows_match_hugging_face(tokenizers, side):
    """Questions with long contexts, truncation="only_second": only the context is windowed."""
    questions, contexts = QUESTIONS[:8], CONTEXTS
    compared = 0
    for (max_length, stride), padding in itertools.product(WINDOWS, PADDINGS):
        kwargs = dict(
            truncation="only_second",
            max_length=max_length,
            stride=stride,
            padding=padding,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            return_length=True,
        )
        compared += compare(tokenizers, side, questions, contexts, **kwargs)  # a batch
        compared += compare(tokenizers, side, questions[0], contexts[0], **kwargs)  # one pair
    squad = ([e["question"] for e in SQUAD], [e["context"] for e in SQUAD])
    for max_length, stride in WINDOWS[:3]:
        compared += compare(
            tokenizers,
            side,
            *squad,
            truncation="only_second",
            max_length=max_length,
            stride=stride,
            padding="max_length",
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            return_tensors="pt",
        )
    assert compared == 2 * (len(WINDOWS) * len(PADDINGS) * 2 + 3)


@pytest.mark.parametrize("side", ["right", "left"])
def test_other_strategies_match_hugging_face(tokenizers, side):
    """only_first (context first), longest_first on pairs (one text cut, or both: every window of the first
    with every window of the second), and single texts."""
    questions, contexts = QUESTIONS[:6], CONTEXTS[:6]
    shorter = [context[:700] for context in contexts]  # about 150 tokens: the cross products stay small
    compared = 0
    for (max_length, stride), padding in itertools.product(HALF_ROOM_WINDOWS, PADDINGS[:2]):
        common = dict(
            max_length=max_length,
            stride=stride,
            padding=padding,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            return_length=True,
        )
        check = functools.partial(compare, tokenizers, side)
        compared += check(contexts, questions, truncation="only_first", **common)
        compared += check(questions, contexts, truncation=True, **common)
        compared += check(shorter[:2], shorter[2:4], truncation="longest_first", **common)
        compared += check(contexts, truncation=True, **common)
        compared += check(contexts[0], truncation="only_first", **common)
    assert compared == 2 * 4 * 2 * 5


def test_more_shapes_match_hugging_face(tokenizers):
    compared = 0
    words = [context.split() for context in CONTEXTS[:4]]
    question_words = [question.split() for question in QUESTIONS[:4]]
    kwargs = dict(truncation="only_second", max_length=96, stride=24, return_overflowing_tokens=True)
    questions, contexts = QUESTIONS[:4], CONTEXTS[:4]
    check = functools.partial(compare, tokenizers, "right")
    compared += check(question_words, words, is_split_into_words=True, **kwargs)
    compared += check(list(zip(questions, contexts, strict=True)), **kwargs)
    compared += check(questions, contexts, pad_to_multiple_of=32, padding=True, **kwargs)
    compared += check(questions, contexts, padding=True, padding_side="left", **kwargs)
    compared += check(questions, contexts, return_token_type_ids=False, **kwargs)
    # Texts that fit: one row each, the mapping still there.
    compared += check(questions, QUESTIONS[4:8], **kwargs)
    compared += check(CONTEXTS[0], truncation=True, return_overflowing_tokens=True)
    # max_length alone means longest_first, as in Hugging Face.
    compared += check(contexts, max_length=50, stride=10, return_overflowing_tokens=True)
    # return_length without overflow: per sequence, after padding ([n] for a single text, as in HF).
    for args, extra in (
        ((QUESTIONS[0],), {}),
        ((QUESTIONS[0], QUESTIONS[1]), {}),
        ((QUESTIONS,), {}),
        ((QUESTIONS,), {"padding": True}),
        ((QUESTIONS,), {"padding": "max_length", "max_length": 64, "truncation": True}),
        ((QUESTIONS[0],), {"return_tensors": "pt"}),
        ((QUESTIONS,), {"padding": True, "return_tensors": "pt"}),
    ):
        compared += check(*args, return_length=True, **extra)
    assert compared == 2 * 15


@pytest.mark.parametrize("kind", ["slow", "fast"])
def test_windows_recover_every_answer(tokenizers, kind):
    """The doc-stride recipe: with windows smaller than the contexts, every SQuAD answer still lies whole
    inside at least one window of its example."""
    ours = tokenizers["right"][1 if kind == "slow" else 2]
    encoding = ours(
        [e["question"] for e in SQUAD],
        [e["context"] for e in SQUAD],
        truncation="only_second",
        max_length=64,
        stride=24,
        padding="max_length",
        return_overflowing_tokens=True,
        return_tensors="pt",
    )
    mapping = encoding["overflow_to_sample_mapping"].tolist()
    assert encoding["input_ids"].shape == (len(mapping), 64)
    assert sorted(set(mapping)) == list(range(len(SQUAD))) and mapping == sorted(mapping)
    for index, example in enumerate(SQUAD):
        answer = example["answers"]["text"][0]
        rows = [row for row, sample in enumerate(mapping) if sample == index]
        assert len(rows) > 1  # the context needed several windows
        answer_ids = ours(answer, add_special_tokens=False)["input_ids"]
        found = [row for row in rows if _contains(encoding["input_ids"][row].tolist(), answer_ids)]
        assert found, (index, answer)


def _contains(ids: list[int], part: list[int]) -> bool:
    return any(ids[i : i + len(part)] == part for i in range(len(ids) - len(part) + 1))


# ---------------------------------------------------------------------------------------------- bad calls
@pytest.mark.parametrize("kind", ["slow", "fast"])
def test_bad_combinations_are_clear_errors(tokenizers, kind):
    ours = tokenizers["right"][1 if kind == "slow" else 2]
    context, question = CONTEXTS[0], QUESTIONS[0]
    with pytest.raises(ValueError, match="needs truncation"):
        ours(context, return_overflowing_tokens=True)
    with pytest.raises(ValueError, match="needs truncation"):
        ours(context, truncation=False, max_length=64, return_overflowing_tokens=True)
    windows = dict(return_overflowing_tokens=True)
    with pytest.raises(ValueError, match=r"stride=62 must be smaller.*=64 minus 2 special tokens leaves 62"):
        ours(context, truncation=True, max_length=64, stride=62, **windows)
    with pytest.raises(ValueError, match="leaves 61"):  # a pair has 3 special tokens
        ours(question, context, truncation="only_second", max_length=64, stride=61, **windows)
    with pytest.raises(ValueError, match="leaves 1; raise max_length"):
        ours(question, context, truncation=True, max_length=4, return_overflowing_tokens=True)
    with pytest.raises(TypeError, match="stride must be a non-negative int"):
        ours(context, truncation=True, max_length=64, stride=-1, return_overflowing_tokens=True)
    with pytest.raises(TypeError, match="stride must be a non-negative int"):
        ours(context, truncation=True, max_length=64, stride=None, return_overflowing_tokens=True)
    with pytest.raises(ValueError, match="only_second' needs a text pair"):
        ours(context, truncation="only_second", max_length=64, return_overflowing_tokens=True)
    with pytest.raises(ValueError, match="padding=True"):  # windows of different lengths cannot be stacked
        ours(context, truncation=True, max_length=64, stride=8, return_tensors="pt", **windows)
    # Per example: a long first text leaves too little room for the windows of the second.
    long_question = " ".join(["why"] * 50)
    message = (
        r"example 1: each window has room for 11 tokens of the second text .*"
        r"minus the 50 tokens of the first text\), not more than stride=16"
    )
    with pytest.raises(ValueError, match=message):
        ours([question, long_question], [context] * 2, truncation="only_second", max_length=64,
             stride=16, **windows)
    with pytest.raises(ValueError, match=r"example 0: cannot truncate: truncation='only_second' must remove"):
        ours(long_question, "a b c", truncation="only_second", max_length=20, return_overflowing_tokens=True)
    with pytest.raises(ValueError, match=r"example 0: truncation='longest_first'.*room for 30 tokens"):
        ours(context, context, truncation=True, max_length=63, stride=30, return_overflowing_tokens=True)
    # stride without return_overflowing_tokens has no effect (as in Hugging Face), checked or not.
    plain = ours(context, truncation=True, max_length=64)
    assert ours(context, truncation=True, max_length=64, stride=8) == plain


def test_hugging_face_fails_where_we_raise_per_example(tokenizers):
    """The per-example errors above are where Hugging Face fails too (a Rust panic or a truncation error)."""
    hf = tokenizers["right"][0]
    long_question = " ".join(["why"] * 50)
    with pytest.raises(BaseException, match="stride"):  # pyo3's PanicException is a BaseException
        hf(long_question, CONTEXTS[0], truncation="only_second", max_length=64, stride=16,
           return_overflowing_tokens=True)
    with pytest.raises(Exception, match="Truncation error"):
        hf(long_question, "a b c", truncation="only_second", max_length=20, return_overflowing_tokens=True)


# ------------------------------------------------------------------------------------ slow == fast, fuzzed
_WORD = st.one_of(
    st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzéü"), min_size=1, max_size=9),
    st.sampled_from([",", ".", "?", "'s", "un##", "[SEP]", "1984", "中文", "naïve", "Straße"]),
)
_SHORT = st.lists(_WORD, max_size=8).map(" ".join)
_LONG = st.lists(_WORD, min_size=8, max_size=60).map(" ".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    firsts=st.lists(st.one_of(_SHORT, _LONG), min_size=1, max_size=3),
    seconds=st.lists(st.one_of(_SHORT, _LONG, _LONG), min_size=3, max_size=3),
    pair=st.booleans(),
    truncation=st.sampled_from(["only_second", "only_first", "longest_first", True]),
    room=st.integers(0, 32),  # max_length beyond the 3 special tokens of a pair and the stride
    stride=st.integers(0, 8),
    padding=st.sampled_from([False, True, "max_length"]),
    side=st.sampled_from(["right", "left"]),
    batched=st.booleans(),
)
def test_slow_equals_fast_on_random_texts(
    tokenizers, firsts, seconds, pair, truncation, room, stride, padding, side, batched
):
    """Same rows, or the same ValueError, from both tokenizers, and Hugging Face's rows where ours succeed;
    a single text's windows are the right slices of its tokens and, overlaps removed, give them back."""
    _, slow, fast = tokenizers[side]
    max_length = 3 + stride + room
    text = firsts if batched else firsts[0]
    text_pair = (seconds[: len(firsts)] if batched else seconds[0]) if pair else None
    if pair and truncation == "only_first":  # the windowed text from the longer ones, as for only_second
        text, text_pair = text_pair, text
    if not pair and truncation == "only_second":
        truncation = "only_first"  # (only_second without a pair is an error, tested above)
    # tok(text, "") outside a batch: a pair for the legacy tokenizer, one text for the Rust one; each of ours
    # follows its own (test_tokenization_hf.py::test_an_empty_second_text_as_each_reference)
    assume(not (pair and not batched and text_pair == ""))
    kwargs = dict(
        truncation=truncation,
        max_length=max_length,
        stride=stride,
        padding=padding,
        return_overflowing_tokens=True,
        return_length=True,
        return_special_tokens_mask=True,
    )
    outcomes = []
    for ours in (slow, fast):
        try:
            outcomes.append(dict(ours(text, text_pair, **kwargs)))
        except ValueError as error:
            outcomes.append(str(error))
    assert outcomes[0] == outcomes[1]
    if isinstance(outcomes[0], str):
        event("refused: " + ("per example" if outcomes[0].startswith("example") else "for every text"))
    else:
        examples = len(firsts) if batched else 1
        event("windowed" if len(outcomes[0]["overflow_to_sample_mapping"]) > examples else "fits")
    if isinstance(outcomes[0], str):
        return
    hf = tokenizers[side][0]
    if batched or text_pair != "":  # (HF reads a single pair with an empty second text as no pair)
        expected = hf(text, text_pair, **kwargs)
        assert {key: _plain(value) for key, value in outcomes[1].items()} == {
            key: _plain(value) for key, value in expected.items()
        }
    if pair:
        return
    budget = max_length - 2
    got = outcomes[0]
    for index, first in enumerate(firsts if batched else firsts[:1]):
        rows = [r for r, sample in enumerate(got["overflow_to_sample_mapping"]) if sample == index]
        masks, rows_ids = got["special_tokens_mask"], got["input_ids"]
        windows = [[t for t, mask in zip(rows_ids[r], masks[r], strict=True) if not mask] for r in rows]
        ids = slow(first, add_special_tokens=False)["input_ids"]
        assert windows == [ids[start:stop] for start, stop in window_spans(len(ids), budget, stride, side)]
        if side == "right":  # overlaps removed, the windows give back the text
            assert windows[0] + [t for window in windows[1:] for t in window[stride:]] == ids


def test_window_spans():
    assert window_spans(10, 4, 1) == [(0, 4), (3, 7), (6, 10)]
    assert window_spans(10, 4, 1, "left") == [(6, 10), (3, 7), (0, 4)]
    assert window_spans(11, 4, 2) == [(0, 4), (2, 6), (4, 8), (6, 10), (8, 11)]
    assert window_spans(3, 4, 2) == [(0, 3)]
    assert window_spans(0, 4, 0) == [(0, 0)]
