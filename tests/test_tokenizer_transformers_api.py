"""The parts of transformers' tokenizer API that Hugging Face code calls on any tokenizer: added and special
tokens, ``text_target``, chat templates, and the saved formats of all three.  Each is compared with
transformers' own BERT tokenizers built from the same vocabulary (the pure-Python one against
``BertTokenizerLegacy``, the fast one against ``BertTokenizer``); offline, CPU only."""

from __future__ import annotations

import json
import sys

import pytest

transformers = pytest.importorskip("transformers")
pytest.importorskip("jinja2")

from convbert.tokenization import ConvBertTokenizer, default_vocab_file  # noqa: E402
from convbert.tokenization_added import AddedToken  # noqa: E402
from convbert.tokenization_chat import compile_template  # noqa: E402
from convbert.tokenization_fast import ConvBertTokenizerFast  # noqa: E402

VOCAB = str(default_vocab_file())
TEXTS = [
    "Hello bim, how are you? BIM and Bim[SEP]bambam <extra>here",
    "un<extra>affable bambam bim",
    "  spaced   <extra>   out  ",
]
CHAT = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hi there!"},
    {"role": "assistant", "content": "Hello. "},
]
TEMPLATE = (
    "{% for message in messages %}{{ '<|' + message['role'] + '|>' + message['content'] | trim + eos_token }}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def same(got, expected) -> bool:
    """Equal outputs; ours also returns token_type_ids where BertTokenizerLegacy does not (documented)."""
    if isinstance(expected, (str, list)):
        return got == expected
    return {key: got[key] for key in expected} == dict(expected)


def pairs():
    """(ours, transformers') for each kind, fresh: the tests change them."""
    return [
        (ConvBertTokenizer(), transformers.BertTokenizerLegacy(VOCAB)),
        (ConvBertTokenizerFast(), transformers.BertTokenizer(VOCAB)),
    ]


def grow(tokenizer):
    """The same additions, applied to either library's tokenizer."""
    counts = [
        tokenizer.add_tokens(["bim", "bambam"]),
        tokenizer.add_special_tokens({"eos_token": "[EOS]", "extra_special_tokens": ["<extra>"]}),
        tokenizer.add_tokens(["hello"]),  # already in the vocabulary: no new id
    ]
    return counts


@pytest.mark.parametrize("kind", [0, 1], ids=["slow", "fast"])
def test_added_tokens_match_transformers(kind):
    ours, theirs = pairs()[kind]
    assert grow(ours) == grow(theirs)
    assert len(ours) == len(theirs) == 30522 + 4
    assert ours.get_vocab() == theirs.get_vocab()
    assert ours.eos_token == theirs.eos_token == "[EOS]"
    assert ours.eos_token_id == theirs.eos_token_id
    assert ours.extra_special_tokens == theirs.extra_special_tokens == ["<extra>"]
    assert ours.all_special_tokens == theirs.all_special_tokens
    assert ours.all_special_ids == theirs.all_special_ids
    assert ours.special_tokens_map == theirs.special_tokens_map
    assert {i: str(t) for i, t in ours.added_tokens_decoder.items()} == {
        i: str(t) for i, t in theirs.added_tokens_decoder.items()
    }
    for text in TEXTS:
        assert ours.tokenize(text) == theirs.tokenize(text), text
        ids = ours(text)["input_ids"]
        assert ids == theirs(text)["input_ids"], text
        for skip in (False, True):
            assert ours.decode(ids, skip_special_tokens=skip) == theirs.decode(ids, skip_special_tokens=skip)
    batch = ours(TEXTS, TEXTS[::-1], padding=True, return_special_tokens_mask=True)
    assert same(batch, theirs(TEXTS, TEXTS[::-1], padding=True, return_special_tokens_mask=True))


@pytest.mark.parametrize("kind", [0, 1], ids=["slow", "fast"])
def test_added_token_flags_match_transformers(kind):
    ours, theirs = pairs()[kind]
    flagged = [
        ("<l>", dict(lstrip=True)),
        ("<r>", dict(rstrip=True)),
        ("wordy", dict(single_word=True)),
    ]
    for content, flags in flagged:
        ours.add_tokens([AddedToken(content, special=True, normalized=False, **flags)])
        theirs.add_tokens([transformers.AddedToken(content, special=True, normalized=False, **flags)])
    for text in ("a  <l>  b  <r>  c", "wordy awordy wordyb (wordy)", "x<l>y<r>z"):
        assert ours.tokenize(text) == theirs.tokenize(text), text


@pytest.mark.parametrize("kind", [0, 1], ids=["slow", "fast"])
def test_saved_added_tokens_reload_in_both_libraries(tmp_path, kind):
    ours, theirs = pairs()[kind]
    grow(ours)
    grow(theirs)
    ours.save_pretrained(tmp_path / "ours")
    config = json.loads((tmp_path / "ours" / "tokenizer_config.json").read_text())
    assert config["added_tokens_decoder"][str(ours.eos_token_id)]["content"] == "[EOS]"
    assert config["extra_special_tokens"] == ["<extra>"]
    reloaded = type(ours).from_pretrained(tmp_path / "ours")
    assert reloaded.get_vocab() == ours.get_vocab()
    assert reloaded.eos_token == "[EOS]" and reloaded.extra_special_tokens == ["<extra>"]
    loaded_by_them = type(theirs).from_pretrained(tmp_path / "ours")
    theirs.save_pretrained(tmp_path / "theirs")
    loaded_by_us = type(ours).from_pretrained(tmp_path / "theirs")
    for other in (reloaded, loaded_by_them, loaded_by_us):
        assert len(other) == len(ours)
        assert other.eos_token_id == ours.eos_token_id
        for text in TEXTS:
            assert other(text)["input_ids"] == ours(text)["input_ids"], (type(other).__name__, text)


def test_both_of_ours_agree_after_adding_tokens(tmp_path):
    slow, fast = ConvBertTokenizer(), ConvBertTokenizerFast()
    grow(slow)  # the counts differ as transformers' do: Rust counts "hello", already in the vocabulary
    grow(fast)
    assert slow.get_vocab() == fast.get_vocab()
    slow.save_pretrained(tmp_path)
    from_slow_folder = ConvBertTokenizerFast.from_pretrained(tmp_path)
    for text in ("hello bim bambam <extra> [EOS]", "a bambam b"):
        assert slow(text)["input_ids"] == fast(text)["input_ids"] == from_slow_folder(text)["input_ids"]


@pytest.mark.parametrize("kind", [0, 1], ids=["slow", "fast"])
def test_special_token_setters_match_transformers(kind):
    ours, theirs = pairs()[kind]
    for tokenizer in (ours, theirs):
        assert tokenizer.bos_token is None and tokenizer.bos_token_id is None
        tokenizer.bos_token = "<s>"
        tokenizer.pad_token_id = 5
        tokenizer.extra_special_tokens_ids = [7, 8]
    assert ours.bos_token_id == theirs.bos_token_id
    assert ours.pad_token == theirs.pad_token == theirs.convert_ids_to_tokens(5)
    assert ours.extra_special_tokens == theirs.extra_special_tokens
    assert (
        ours("a b", "c", padding="max_length", max_length=10)["input_ids"]
        == theirs("a b", "c", padding="max_length", max_length=10)["input_ids"]
    )


@pytest.mark.parametrize("kind", [0, 1], ids=["slow", "fast"])
def test_text_target_labels_match_transformers(kind):
    ours, theirs = pairs()[kind]
    sources, targets = ["translate this", "and this longer one, please"], ["übersetze das", "und das hier"]
    for kwargs in (
        {},
        {"max_length": 4},
        {"max_length": 6, "max_target_length": 3, "padding": True, "truncation": True},
    ):
        assert same(
            ours(sources, text_target=targets, **kwargs), theirs(sources, text_target=targets, **kwargs)
        )
    assert same(ours(text_target=targets[0]), theirs(text_target=targets[0]))
    pair = ours("q", "c", text_target="t", text_pair_target="u")
    assert pair["labels"] == theirs("q", "c", text_target="t", text_pair_target="u")["labels"]


@pytest.mark.parametrize("kind", [0, 1], ids=["slow", "fast"])
def test_apply_chat_template_matches_transformers(kind):
    ours, theirs = pairs()[kind]
    for tokenizer in (ours, theirs):
        tokenizer.eos_token = "</s>"
    calls = [
        dict(tokenize=False),
        dict(tokenize=False, add_generation_prompt=True),
        dict(tokenize=False, continue_final_message=True),
        dict(tokenize=True, return_dict=False),
        dict(tokenize=True, padding=True),
    ]
    for kwargs in calls:
        for conversation in (CHAT, [CHAT, CHAT[:2]]):
            got = ours.apply_chat_template(conversation, chat_template=TEMPLATE, **kwargs)
            assert same(got, theirs.apply_chat_template(conversation, chat_template=TEMPLATE, **kwargs)), (
                kwargs
            )
    ours.chat_template = theirs.chat_template = {"default": TEMPLATE, "short": "{{ messages[0]['content'] }}"}
    assert ours.apply_chat_template(CHAT, tokenize=False) == theirs.apply_chat_template(CHAT, tokenize=False)
    assert ours.apply_chat_template(CHAT, chat_template="short", tokenize=False) == "You are terse."
    with pytest.raises(ValueError):
        ours.apply_chat_template([], tokenize=False)


@pytest.mark.parametrize("jinja_files", [True, False])
@pytest.mark.parametrize("kind", [0, 1], ids=["slow", "fast"])
def test_chat_templates_saved_as_transformers_saves_them(tmp_path, kind, jinja_files):
    ours, theirs = pairs()[kind]
    for templates in (TEMPLATE, {"default": TEMPLATE, "tool_use": "{{ 'tools' }}"}):
        ours.chat_template = theirs.chat_template = templates
        mine, hers = tmp_path / f"ours-{len(templates)}", tmp_path / f"theirs-{len(templates)}"
        ours.save_pretrained(mine, save_jinja_files=jinja_files)
        theirs.save_pretrained(hers, save_jinja_files=jinja_files)
        files = sorted(str(p.relative_to(mine)) for p in mine.rglob("*.jinja"))
        assert files == sorted(str(p.relative_to(hers)) for p in hers.rglob("*.jinja"))
        mine_config = json.loads((mine / "tokenizer_config.json").read_text())
        hers_config = json.loads((hers / "tokenizer_config.json").read_text())
        assert mine_config.get("chat_template") == hers_config.get("chat_template")
        assert type(theirs).from_pretrained(mine).chat_template == templates
        assert type(ours).from_pretrained(hers).chat_template == templates
        assert type(ours).from_pretrained(mine).chat_template == templates


def test_chat_template_names_cannot_escape_the_folder(tmp_path):
    tokenizer = ConvBertTokenizer()
    tokenizer.chat_template = {"default": "a", "../../escape": "b"}
    with pytest.raises(ValueError, match="plain file name"):
        tokenizer.save_pretrained(tmp_path / "a" / "b")
    assert not (tmp_path / "a").exists()
    assert not list(tmp_path.rglob("escape.jinja"))


def test_chat_templates_need_jinja_only_when_rendered(monkeypatch):
    tokenizer = ConvBertTokenizer(chat_template="{{ 'x' }}")
    compile_template.cache_clear()
    monkeypatch.setitem(sys.modules, "jinja2", None)
    with pytest.raises(ImportError, match="jinja2"):
        tokenizer.apply_chat_template(CHAT, tokenize=False)
    monkeypatch.undo()
    compile_template.cache_clear()
    assert tokenizer.apply_chat_template(CHAT, tokenize=False) == "x"


@pytest.mark.parametrize("cls", [ConvBertTokenizer, ConvBertTokenizerFast])
def test_constructor_arguments_as_transformers(cls):
    theirs = transformers.BertTokenizer if cls is ConvBertTokenizerFast else transformers.BertTokenizerLegacy
    eos = transformers.AddedToken("[E]", lstrip=True, special=True)
    tokenizer = cls(eos_token=eos, extra_special_tokens=["<a>"])
    reference = theirs(VOCAB, eos_token=eos)
    reference.add_special_tokens({"extra_special_tokens": ["<a>"]})
    assert tokenizer.eos_token == "[E]" and tokenizer.extra_special_tokens == ["<a>"]
    assert tokenizer.tokenize("x [E] <a>") == reference.tokenize("x [E] <a>")
    assert cls(additional_special_tokens=["<a>"]).extra_special_tokens == ["<a>"]
    assert tokenizer.init_kwargs["eos_token"] == "[E]"
    assert tokenizer.backend == ("tokenizers" if cls is ConvBertTokenizerFast else "custom")
    with pytest.raises(AttributeError, match="conflicts"):
        cls(add_special_tokens=True)
    with pytest.warns(UserWarning, match="add_bos_token"):
        assert cls(add_bos_token=True).init_kwargs["add_bos_token"] is True
    with pytest.raises(ValueError, match="not a special token name"):
        tokenizer.add_special_tokens({"start_token": "<s>"})


@pytest.mark.parametrize("kind", ["slow", "fast"])
def test_added_tokens_reach_a_resized_model_as_in_transformers(kind):
    """The usual recipe: add tokens, resize the model's embeddings to len(tokenizer), encode, train."""
    import torch

    import convbert

    tokenizer = (convbert.ConvBertTokenizer if kind == "slow" else convbert.ConvBertTokenizerFast)()
    before = len(tokenizer)
    assert tokenizer.add_tokens(["<ent>", "</ent>"]) == 2 and len(tokenizer) == before + 2
    model = convbert.ConvBertForMaskedLM(convbert.ConvBertConfig(
        vocab_size=before, hidden_size=16, num_hidden_layers=1, num_attention_heads=4, intermediate_size=32))
    model.resize_token_embeddings(len(tokenizer))
    batch = tokenizer(["a <ent> word </ent> here"], return_tensors="pt")
    assert int(batch["input_ids"].max()) == before + 1
    out = model(**batch, labels=batch["input_ids"])
    assert out.logits.shape[-1] == len(tokenizer) and torch.isfinite(out.loss)
