"""Our tokenizers against Hugging Face's, used as a test-only oracle.

ConvBertTokenizer is compared with transformers' pure-Python ``BertTokenizerLegacy`` and ConvBertTokenizerFast
with transformers' ``BertTokenizer`` (tokenizers-backed), both loaded on our shipped vocabulary, on real
sentences (Rotten Tomatoes, or Python's docs as a fallback), sentence pairs under every truncation strategy,
padded batches, decoding, hand-made Unicode, and arbitrary text.  Where the two Hugging Face tokenizers
disagree with each other (odd-budget pair truncation, Unicode-table differences), each of ours must agree with
its own counterpart.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convbert.tokenization import ConvBertTokenizer, default_vocab_file
from convbert.tokenization_fast import ConvBertTokenizerFast

transformers = pytest.importorskip("transformers")
from transformers import BertTokenizer  # noqa: E402
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy  # noqa: E402

SENTIMENT = Path(__file__).resolve().parents[1] / "convbert" / "data" / "sentiment" / "rotten_tomatoes.tsv"
KEYS = ("input_ids", "token_type_ids", "attention_mask", "special_tokens_mask")


def real_sentences(n: int) -> list[str]:
    """``n`` real sentences spread over the shipped sentiment file (id<TAB>rating<TAB>text), or the stdlib's
    own documentation split at sentence ends when that file is absent."""
    if SENTIMENT.is_file():
        lines = SENTIMENT.read_text(encoding="utf-8").splitlines()
        sentences = [line.split("\t", 2)[-1] for line in lines if line.strip()]
    else:
        from pydoc_data.topics import topics

        sentences = [
            s.strip()
            for doc in topics.values()
            for s in re.split(r"(?<=[.!?])\s+", doc)
            if len(s.strip()) > 20
        ]
    step = max(1, len(sentences) // n)
    return sentences[::step][:n]


SENTENCES = real_sentences(400)

# Hand-made Unicode, including the characters on which the two Hugging Face tokenizers differ.
UNICODE = [
    "",
    "   \t\n",
    "I love 🍕! 👍🏽 👨\u200d👩\u200d👧\u200d👦 🇫🇷 1️⃣ ❤️ 🫠",
    "e\u0301 é n\u0303 ñ Zalgo t̸̢̛̗e̴x̷t",
    "zero\u200bwidth\u200cjoin\u200dbom\ufeffsoft\u00adhyphen",
    "controls \x00\x01\x07\x1b\x7f\x85 \x1c\x1d\x1e\x1f \u2028 \u2029",
    "مرحبا بالعالم؟ שָׁלוֹם \u200f\u200e\u202e",
    "中文字符测试，AI是未来。日本語のテキスト 한국어",
    "ＡＢＣ１２３！ｈｅｌｌｏ",
    "a" * 100 + " " + "b" * 101 + " " + "中" * 150,
    "∑∫√∞ x² ½ ﬁnance ǅ İstanbul ı ß ẞ",
    "[CLS] a [SEP] b [MASK]ed [cls] [UNK][PAD]",
    "don't it's we're I'm they've",
    "ΟΔΟΣ ΣΑΣ",  # final capital sigma: "ς" in Python, "σ" in Rust
    "unassigned \u0378 noncharacter \uffff new \u0890 \u08d3 \U0002b91e",  # Unicode-table differences
    "[SE\x00P]",  # the control char is removed after the slow tokenizer looked for special tokens
    "private \ue000 \U0010fffd",
]


@pytest.fixture(scope="module")
def vocab_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("vocab")
    shutil.copy(default_vocab_file(), directory / "vocab.txt")
    return directory


@pytest.fixture(scope="module")
def pairs(vocab_dir):
    """(ours, Hugging Face's, call) for the pure-Python and the fast tokenizer.  The legacy tokenizer only
    returns token types when asked, so ``call`` asks."""
    transformers.logging.set_verbosity_error()
    legacy = BertTokenizerLegacy(str(vocab_dir / "vocab.txt"), model_max_length=512)
    hf_fast = BertTokenizer.from_pretrained(str(vocab_dir), model_max_length=512)
    return {
        "slow": (ConvBertTokenizer(), legacy, lambda *a, **k: legacy(*a, return_token_type_ids=True, **k)),
        "fast": (ConvBertTokenizerFast(), hf_fast, hf_fast),
    }


@pytest.fixture(params=["slow", "fast"])
def kind(request) -> str:
    return request.param


def same(ours: dict, theirs: dict) -> bool:
    keys = [key for key in KEYS if key in theirs]
    return all(_plain(ours[key]) == _plain(theirs[key]) for key in keys) and set(keys) <= set(ours)


def _plain(value):
    return value.tolist() if isinstance(value, torch.Tensor) else value


# ------------------------------------------------------------------------------------------ real sentences
def test_real_sentences_encode_identically(pairs, kind):
    ours, _, theirs = pairs[kind]
    assert len(SENTENCES) == 400
    mismatches = [
        s
        for s in SENTENCES
        if not same(ours(s, return_special_tokens_mask=True), theirs(s, return_special_tokens_mask=True))
    ]
    assert mismatches == []
    assert ours(SENTENCES, padding=True)["input_ids"] == theirs(SENTENCES, padding=True)["input_ids"]


def test_real_sentences_decode_identically(pairs, kind):
    ours, hf, _ = pairs[kind]
    mismatches = []
    for sentence in SENTENCES:
        ids = ours(sentence)["input_ids"]
        for skip in (False, True):
            for clean in (None, True, False):
                kwargs = dict(skip_special_tokens=skip, clean_up_tokenization_spaces=clean)
                if ours.decode(ids, **kwargs) != hf.decode(ids, **kwargs):
                    mismatches.append((sentence, kwargs))
    assert mismatches == []
    batch = ours(SENTENCES[:32], padding=True)["input_ids"]
    assert ours.batch_decode(batch, skip_special_tokens=True) == hf.batch_decode(
        batch, skip_special_tokens=True
    )


@pytest.mark.parametrize("second", ["", " ", "a"])
@pytest.mark.parametrize("first", ["hello world", "", "Unaffable runs."])
def test_an_empty_second_text_as_each_reference(pairs, kind, first, second):
    """``tok(text, "")``: the legacy tokenizer encodes a pair ([CLS] a [SEP] [SEP]), the Rust-backed one the
    first text alone; inside a batch both encode a pair. Each of ours follows its counterpart."""
    ours, hf, theirs = pairs[kind]
    assert same(ours(first, second), theirs(first, second))
    assert same(ours([first], [second]), theirs([first], [second]))
    assert same(ours(first, second, truncation=True, max_length=4),
                theirs(first, second, truncation=True, max_length=4))
    assert ours.encode(first, second) == hf.encode(first, second)


TRUNCATIONS = ["longest_first", "only_first", "only_second", True, False, "do_not_truncate"]


def test_pairs_under_every_truncation_strategy(pairs, kind):
    """200 sentence pairs x 6 strategies x 5 lengths (odd and even budgets).  Where a strategy cannot fit a
    pair, ours raises ValueError; Rust raises too, the legacy tokenizer silently returns an over-long
    sequence."""
    ours, _, theirs = pairs[kind]
    compared = identical = refused = 0
    for i in range(0, 400, 2):
        first, second = SENTENCES[i], SENTENCES[i + 1]
        for truncation in TRUNCATIONS:
            for max_length in (3, 12, 17, 24, 33):
                kwargs = dict(truncation=truncation, max_length=max_length, return_special_tokens_mask=True)
                compared += 1
                try:
                    got = ours(first, second, **kwargs)
                except ValueError:
                    refused += 1
                    if kind == "fast":
                        with pytest.raises(Exception, match="Truncation error"):
                            theirs(first, second, **kwargs)
                    else:
                        assert len(theirs(first, second, **kwargs)["input_ids"]) > max_length
                    continue
                identical += same(got, theirs(first, second, **kwargs))
    assert identical + refused == compared == 6000
    assert refused < compared // 4


def test_padded_batches(pairs, kind):
    ours, _, theirs = pairs[kind]
    firsts, seconds = SENTENCES[:64:2], SENTENCES[1:64:2]
    options = [
        dict(padding=True),
        dict(padding="longest", pad_to_multiple_of=8),
        dict(padding="max_length", max_length=40, truncation=True),
        dict(padding="max_length", truncation="only_second", max_length=64),
        dict(padding=True, padding_side="left"),
        dict(padding=True, return_tensors="pt"),
        dict(padding="max_length"),
    ]
    for kwargs in options:
        kwargs = dict(kwargs, return_special_tokens_mask=True)
        assert same(ours(firsts, **kwargs), theirs(firsts, **kwargs)), kwargs
        assert same(ours(firsts, seconds, **kwargs), theirs(firsts, seconds, **kwargs)), kwargs
        zipped = list(zip(firsts, seconds, strict=True))
        assert same(ours(zipped, **kwargs), theirs(zipped, **kwargs)), kwargs


def test_pretokenized_words(pairs, kind):
    ours, _, theirs = pairs[kind]
    words = [sentence.split() for sentence in SENTENCES[:50]]
    assert same(
        ours(words, is_split_into_words=True, padding=True),
        theirs(words, is_split_into_words=True, padding=True),
    )
    assert same(
        ours(words[0], words[1], is_split_into_words=True),
        theirs(words[0], words[1], is_split_into_words=True),
    )


# ------------------------------------------------------------------------------- where HF disagrees with HF
def test_odd_budget_longest_first(pairs):
    """Sweep pair lengths and max_length: the two Hugging Face tokenizers differ exactly when the budget
    (max_length - 3) is odd, both texts must be cut, and the first is not longer than the second -- the
    pure-Python one keeps ceil(budget / 2) tokens of the first text, Rust gives them to the second."""
    slow, legacy_call = pairs["slow"][0], pairs["slow"][2]
    fast, hf_fast = pairs["fast"][0], pairs["fast"][2]
    differing = 0
    for n1 in range(1, 13):
        for n2 in range(1, 13):
            first, second = " ".join(["a"] * n1), " ".join(["b"] * n2)
            for max_length in range(3, 26):
                kwargs = dict(truncation="longest_first", max_length=max_length)
                legacy_ids = legacy_call(first, second, **kwargs)["input_ids"]
                rust_ids = hf_fast(first, second, **kwargs)["input_ids"]
                assert slow(first, second, **kwargs)["input_ids"] == legacy_ids
                assert fast(first, second, **kwargs)["input_ids"] == rust_ids
                budget = max_length - 3
                predicted = budget % 2 == 1 and min(n1, n2) > budget // 2 and n1 <= n2
                assert (legacy_ids != rust_ids) == predicted, (n1, n2, max_length)
                if predicted:
                    differing += 1
                    assert legacy_ids.count(1037) == rust_ids.count(1037) + 1 == budget // 2 + 1
    assert differing > 0


@pytest.mark.parametrize("text", UNICODE)
def test_hand_made_unicode(pairs, kind, text):
    ours, hf, theirs = pairs[kind]
    got, expected = ours(text, return_special_tokens_mask=True), theirs(text, return_special_tokens_mask=True)
    assert same(got, expected)
    ids = got["input_ids"]
    assert ours.decode(ids) == hf.decode(ids)
    assert ours.decode(ids, skip_special_tokens=True) == hf.decode(ids, skip_special_tokens=True)


def test_lone_surrogates(pairs):
    """The legacy tokenizer drops them as control characters; Rust cannot take them at all (transformers
    raises), so ours blanks them first and gives the legacy result."""
    text = "a\ud800b \udfff c"
    expected = pairs["slow"][2](text)["input_ids"]
    assert pairs["slow"][0](text)["input_ids"] == expected == pairs["fast"][0](text)["input_ids"]
    with pytest.raises(TypeError):
        pairs["fast"][2](text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(st.characters(exclude_categories=("Cs",)), max_size=40))
def test_arbitrary_text_matches_each_counterpart(pairs, text):
    for kind in ("slow", "fast"):
        ours, _, theirs = pairs[kind]
        assert ours(text)["input_ids"] == theirs(text)["input_ids"], kind


# -------------------------------------------------------------------------------------- files and training
def test_hugging_face_loads_our_saved_directory(tmp_path, pairs, kind):
    ours = pairs[kind][0]
    ours.save_pretrained(tmp_path)
    loaded = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    assert loaded(SENTENCES[:20])["input_ids"] == ours(SENTENCES[:20])["input_ids"]


def test_we_load_hugging_face_saved_directories(tmp_path, pairs):
    pairs["slow"][1].save_pretrained(tmp_path / "legacy")  # vocab.txt + tokenizer_config.json
    pairs["fast"][1].save_pretrained(
        tmp_path / "fast"
    )  # tokenizer.json + tokenizer_config.json, no vocab.txt
    slow = ConvBertTokenizer.from_pretrained(tmp_path / "legacy")
    fast = ConvBertTokenizerFast.from_pretrained(tmp_path / "fast")
    assert slow(SENTENCES[:20])["input_ids"] == fast(SENTENCES[:20])["input_ids"]
    assert fast(SENTENCES[:20])["input_ids"] == pairs["fast"][1](SENTENCES[:20])["input_ids"]


def test_training_matches_hugging_face(pairs):
    """Same corpus and size give the same vocabulary (the trainer orders ties arbitrarily, so compare
    token sets) and the same tokens."""
    ours, hf, _ = pairs["fast"]
    corpus = real_sentences(2000)
    trained, reference = (t.train_new_from_iterator(iter(corpus), vocab_size=400) for t in (ours, hf))
    assert set(trained.get_vocab()) == set(reference.get_vocab())
    assert [trained.tokenize(s) for s in SENTENCES[:100]] == [reference.tokenize(s) for s in SENTENCES[:100]]
