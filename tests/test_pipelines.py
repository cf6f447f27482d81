"""``convbert.pipelines.pipeline`` against ``transformers.pipeline`` on the same checkpoints.

One tiny random model per task head is saved with the shipped vocabulary's tokenizer; transformers' pipeline
and ours load the same directory and must give the same labels, tokens, words, entities and spans, scores
within 1e-4. transformers 5 has no question-answering pipeline any more, so that task is compared with
``reference_answers`` below: transformers' own tokenizer, model and span scoring (``select_starts_ends``),
assembled the way transformers 4.57's QuestionAnsweringPipeline assembled them.
"""

from __future__ import annotations

import functools
import unicodedata

import numpy as np
import pytest
import torch
from conftest import save_random_checkpoints, tiny_config_kwargs

from convbert import (
    ConvBertConfig,
    ConvBertForMaskedLM,
    ConvBertForQuestionAnswering,
    ConvBertForSequenceClassification,
    ConvBertForTokenClassification,
    ConvBertModel,
    ConvBertTokenizerFast,
)
from convbert.errors import CheckpointError, ConfigError, InputError
from convbert.pipelines import pipeline, pipeline_class, supported_tasks

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()
from transformers.pipelines.document_question_answering import select_starts_ends  # noqa: E402

SIZES = tiny_config_kwargs(vocab_size=30522, max_position_embeddings=64, initializer_range=0.2)
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
HEADS = {
    "fill-mask": (ConvBertForMaskedLM, {}),
    "text-classification": (ConvBertForSequenceClassification,
                            {"id2label": {0: "negative", 1: "neutral", 2: "positive"}}),
    "token-classification": (ConvBertForTokenClassification, {"id2label": dict(enumerate(TAGS))}),
    "question-answering": (ConvBertForQuestionAnswering, {}),
}
TEXTS = [
    "Hello unaffable Zürich people of New York!",
    "Jean-Baptiste lives in Montréal 🫠 since 1999.",
    "the cat",
]
CONTEXT = (
    "ConvBERT was proposed in 2020 by Zihang Jiang, Weihao Yu, Daquan Zhou, Yunpeng Chen, Jiashi Feng and "
    "Shuicheng Yan. It replaces some self-attention heads with span-based dynamic convolution heads, which "
    "model local dependencies directly; the mixed attention block is cheaper than BERT's and the small model "
    "trains on one GPU in a few days. The authors released small, medium-small and base checkpoints."
)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """task -> a directory with a random model of that task's head (seeded) and the shipped tokenizer."""
    return save_random_checkpoints(tmp_path_factory, HEADS, SIZES)


_LOADED: dict = {}


def both(checkpoints, task: str, fresh: bool = False, **kwargs):
    """(transformers' pipeline, ours) on the same checkpoint; loaded once per module unless ``fresh``."""
    canonical = pipeline_class(task).task
    directory = checkpoints[canonical if canonical in checkpoints else "token-classification"]
    key = (str(directory), task, tuple(sorted(kwargs.items())))
    if fresh or key not in _LOADED:
        pair = (transformers.pipeline(task, model=str(directory), **kwargs),
                pipeline(task, model=directory, **kwargs))
        if fresh:
            return pair
        _LOADED[key] = pair
    return _LOADED[key]


@functools.cache
def reference_parts(directory: str):
    """transformers' tokenizer and question-answering model of a checkpoint."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    return tokenizer, transformers.ConvBertForQuestionAnswering.from_pretrained(directory).eval()


def assert_same(ours, theirs, where: str = "result") -> None:
    """Same structure and values; floats (the scores) within 1e-4."""
    if isinstance(theirs, (float, np.floating)):
        assert isinstance(ours, float), f"{where}: {ours!r} is not a float"
        assert abs(ours - float(theirs)) <= 1e-4, f"{where}: {ours} vs {theirs}"
    elif isinstance(theirs, dict):
        assert list(ours) == list(theirs), f"{where}: keys {list(ours)} vs {list(theirs)}"
        for key in theirs:
            assert_same(ours[key], theirs[key], f"{where}[{key!r}]")
    elif isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), f"{where}: {ours!r} vs {theirs!r}"
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        assert ours == theirs and type(ours) is type(theirs), f"{where}: {ours!r} vs {theirs!r}"


def scores_of(result) -> list[float]:
    if isinstance(result, dict):
        return [result["score"]] if "score" in result else [s for v in result.values() for s in scores_of(v)]
    if isinstance(result, list):
        return [s for item in result for s in scores_of(item)]
    return []


def assert_not_ties(result) -> None:
    """The random heads have structure: the scores are not all (nearly) equal."""
    scores = scores_of(result)
    assert len(scores) >= 2 and max(scores) - min(scores) > 1e-5, scores


# -- fill-mask ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call", [
    dict(inputs="Paris is the [MASK] of France."),
    dict(inputs="Paris is the [MASK] of France.", top_k=3),
    dict(inputs="The [MASK] sat on the [MASK].", top_k=2),
    dict(inputs="Paris is the [MASK] of France.", targets=["capital", "city", "unaffable", "the"]),
    dict(inputs=["Paris is the [MASK] of France.", "a [MASK]", "[MASK] [MASK] ok"], top_k=2, batch_size=2),
    dict(inputs=["Just one [MASK] here."], top_k=2),
    dict(inputs="Paris is the [MASK] of France.", tokenizer_kwargs={"truncation": True, "max_length": 8}),
])
def test_fill_mask_matches_transformers(checkpoints, call):
    theirs, ours = both(checkpoints, "fill-mask")
    expected = theirs(**call)
    result = ours(**call)
    assert_same(result, expected)
    assert_not_ties(result)


# -- text classification -----------------------------------------------------------------------------------
@pytest.mark.parametrize("call", [
    dict(inputs="A gripping, funny film."),
    dict(inputs=TEXTS),
    dict(inputs=TEXTS, batch_size=2),
    dict(inputs="A gripping, funny film.", top_k=2),
    dict(inputs=TEXTS, top_k=None, batch_size=3),
    dict(inputs={"text": "Is it good?", "text_pair": "It is very good."}),
    dict(inputs=[{"text": "Is it good?", "text_pair": "Yes."}, "plain"], top_k=1),
    dict(inputs=TEXTS, function_to_apply="sigmoid"),
    dict(inputs=TEXTS, function_to_apply="none", top_k=3),
    dict(inputs="word " * 80, truncation=True),
])
def test_text_classification_matches_transformers(checkpoints, call):
    theirs, ours = both(checkpoints, "text-classification")
    result = ours(**call)
    assert_same(result, theirs(**call))
    assert_not_ties(ours(TEXTS, top_k=None))


@pytest.mark.parametrize("change", [dict(problem_type="regression"),
                                    dict(problem_type="multi_label_classification")])
def test_text_classification_default_function_follows_problem_type(checkpoints, change):
    theirs, ours = both(checkpoints, "sentiment-analysis", fresh=True)
    for config in (theirs.model.config, ours.model.config):
        for key, value in change.items():
            setattr(config, key, value)
    assert_same(ours(TEXTS, top_k=None), theirs(TEXTS, top_k=None))


def test_single_output_classifier_uses_sigmoid(tmp_path):
    torch.manual_seed(7)
    ConvBertForSequenceClassification(ConvBertConfig(**SIZES, num_labels=1)).save_pretrained(tmp_path)
    ConvBertTokenizerFast(model_max_length=64).save_pretrained(tmp_path)
    theirs = transformers.pipeline("text-classification", model=str(tmp_path))
    ours = pipeline("text-classification", model=tmp_path)
    assert_same(ours(TEXTS), theirs(TEXTS))
    assert all(0 < r["score"] < 1 for r in ours(TEXTS))


# -- token classification ----------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["none", "simple", "first", "average", "max"])
@pytest.mark.parametrize("ignore_labels", [None, []])
def test_token_classification_matches_transformers(checkpoints, strategy, ignore_labels):
    theirs, ours = both(checkpoints, "ner", aggregation_strategy=strategy)
    kwargs = {} if ignore_labels is None else {"ignore_labels": ignore_labels}
    result = ours(TEXTS, batch_size=2, **kwargs)
    assert_same(result, theirs(TEXTS, batch_size=2, **kwargs))
    assert_same(ours(TEXTS[1], **kwargs), theirs(TEXTS[1], **kwargs))
    assert_not_ties(result)
    if ignore_labels == []:
        key = "entity" if strategy == "none" else "entity_group"
        assert len({e[key] for r in result for e in r}) >= 3  # several labels, not one everywhere
    for text, entities in zip(TEXTS, result, strict=True):
        for entity in entities:  # character offsets into the text
            assert plain(text[entity["start"]:entity["end"]]) == plain(entity["word"])


def plain(text: str) -> str:
    """Lower case, no accents, no spaces, no "##": what the tokenizer's word and the text share."""
    text = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in text if not unicodedata.combining(c) and not c.isspace()).replace("##", "")


def test_token_classification_merges_word_pieces(checkpoints):
    ours = pipeline("token-classification", model=checkpoints["token-classification"], ignore_labels=[])
    pieces = ours("unaffable", aggregation_strategy="none")
    assert [p["word"] for p in pieces] == ["una", "##ffa", "##ble"]
    words = ours("unaffable", aggregation_strategy="first")
    assert [(w["word"], w["start"], w["end"]) for w in words] == [("unaffable", 0, 9)]


def test_token_classification_long_text_with_stride(checkpoints):
    text = " ".join(TEXTS * 6)  # longer than model_max_length=64 tokens
    theirs, ours = both(checkpoints, "token-classification", aggregation_strategy="simple")
    assert len(ours.tokenizer(text)["input_ids"]) > 64
    result = ours(text, stride=16, ignore_labels=[])
    assert_same(result, theirs(text, stride=16, ignore_labels=[]))
    assert result[-1]["end"] > len(text) - 5  # the end of the text was read


# -- question answering ------------------------------------------------------------------------------------
def reference_answers(directory, question: str, context: str, *, top_k: int = 1, max_seq_len: int = 64,
                      doc_stride: int | None = None, max_answer_len: int = 15,
                      handle_impossible_answer: bool = False, align_to_words: bool = True,
                      batch_size: int = 1):
    """transformers 4.57's QuestionAnsweringPipeline, rebuilt from transformers' tokenizer, model and
    ``select_starts_ends`` (the pipeline itself was removed in transformers 5). Returns (result, windows)."""
    doc_stride = min(max_seq_len // 2, 128) if doc_stride is None else doc_stride
    tokenizer, model = reference_parts(str(directory))
    enc = tokenizer(question, context, truncation="only_second", max_length=max_seq_len, stride=doc_stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True, return_token_type_ids=True)
    windows = len(enc["input_ids"])
    p_masks = [[0 if t == tokenizer.cls_token_id else int(s != 1)
                for t, s in zip(enc["input_ids"][i], enc.sequence_ids(i), strict=True)]
               for i in range(windows)]
    rows = []  # (start logits, end logits, p_mask, attention mask) per window, padded as pad_collate_fn does
    for first in range(0, windows, batch_size):
        group = range(first, min(windows, first + batch_size))
        longest = max(len(enc["input_ids"][i]) for i in group)

        def padded(key, value, group=group, longest=longest):
            return torch.tensor([enc[key][i] + [value] * (longest - len(enc[key][i])) for i in group])

        with torch.no_grad():
            out = model(input_ids=padded("input_ids", tokenizer.pad_token_id),
                        token_type_ids=padded("token_type_ids", 0),
                        attention_mask=padded("attention_mask", 0))
        for j, i in enumerate(group):
            rows.append((out.start_logits[j].numpy(), out.end_logits[j].numpy(),
                         np.array(p_masks[i] + [1] * (longest - len(p_masks[i]))),
                         padded("attention_mask", 0)[j].numpy()))
    min_null_score, answers = 1000000, []
    for i, (start, end, p_mask, attention) in enumerate(rows):
        starts, ends, scores, min_null_score = select_starts_ends(
            start[None], end[None], p_mask[None], attention[None], min_null_score,
            top_k * 2 + 10 if align_to_words else top_k, handle_impossible_answer, max_answer_len)
        encoding = enc.encodings[i]
        for s, e, score in zip(starts, ends, scores, strict=True):
            try:
                if not align_to_words:
                    raise ValueError
                a = encoding.word_to_chars(encoding.token_to_word(s), sequence_index=1)[0]
                b = encoding.word_to_chars(encoding.token_to_word(e), sequence_index=1)[1]
            except Exception:
                a, b = encoding.offsets[s][0], encoding.offsets[e][1]
            same = [x for x in answers if x["answer"].lower() == context[a:b].lower()]
            if same:
                same[0]["score"] += score.item()
            else:
                answers.append({"score": score.item(), "start": a, "end": b, "answer": context[a:b]})
    if handle_impossible_answer:
        answers.append({"score": min_null_score, "start": 0, "end": 0, "answer": ""})
    answers = sorted(answers, key=lambda x: x["score"], reverse=True)[:top_k]
    return (answers[0] if len(answers) == 1 else answers), windows


@pytest.mark.parametrize("options", [
    dict(),
    dict(top_k=3),
    dict(top_k=5, max_seq_len=32, doc_stride=8),
    dict(top_k=4, max_seq_len=32, doc_stride=8, batch_size=3),
    dict(top_k=2, max_seq_len=40, doc_stride=12, max_answer_len=4, align_to_words=False),
    dict(max_seq_len=32, doc_stride=8, handle_impossible_answer=True, top_k=3),
])
def test_question_answering_matches_transformers(checkpoints, options):
    directory = checkpoints["question-answering"]
    question = "Who proposed ConvBERT?"
    expected, windows = reference_answers(directory, question, CONTEXT, **options)
    ours = _LOADED.setdefault(("qa", str(directory)), pipeline("question-answering", model=directory))
    result = ours(question=question, context=CONTEXT, **options)
    assert_same(result, expected)
    for answer in result if isinstance(result, list) else [result]:
        assert CONTEXT[answer["start"]:answer["end"]] == answer["answer"]
    if options.get("max_seq_len") == 32:
        assert windows >= 4  # the context was read in several windows
    if options.get("top_k", 1) > 1:
        assert isinstance(result, list) and len(result) == options["top_k"]
        assert_not_ties(result)


def test_question_answering_call_forms(checkpoints):
    ours = pipeline("question-answering", model=checkpoints["question-answering"], max_seq_len=32,
                    doc_stride=8)
    one = ours(question="Who?", context=CONTEXT)
    assert ours({"question": "Who?", "context": CONTEXT}) == one
    assert ours([{"question": "Who?", "context": CONTEXT}]) == one  # a list of one: its result (transformers)
    many = ours([{"question": "Who?", "context": CONTEXT}, {"question": "When?", "context": TEXTS[1]}])
    assert many == [one, ours(question="When?", context=TEXTS[1])]
    assert ours(question=["Who?", "When?"], context=CONTEXT)[0] == one
    with pytest.raises(InputError, match="input 1: context must be a non-empty string"):
        ours([{"question": "Who?", "context": CONTEXT}, {"question": "Who?", "context": ""}])


# -- feature extraction ------------------------------------------------------------------------------------
def test_feature_extraction_matches_transformers(checkpoints):
    theirs, ours = both(checkpoints, "feature-extraction")
    one = ours("Hello world")
    assert np.array(one).shape == (1, 4, SIZES["hidden_size"])
    torch.testing.assert_close(torch.tensor(one), torch.tensor(theirs("Hello world")), atol=1e-4, rtol=0)
    for a, b in zip(ours(TEXTS, batch_size=2), theirs(TEXTS, batch_size=2), strict=True):
        torch.testing.assert_close(torch.tensor(a), torch.tensor(b), atol=1e-4, rtol=0)  # padded rows too
    tensor = ours("Hello world", return_tensors=True)
    assert isinstance(tensor, torch.Tensor) and tensor.shape == (1, 4, SIZES["hidden_size"])
    encoder = pipeline("feature-extraction", model=ConvBertForTokenClassification.from_pretrained(
        checkpoints["token-classification"]), tokenizer=ours.tokenizer)
    torch.testing.assert_close(torch.tensor(encoder("Hello world")), torch.tensor(one))


# -- loading and errors ------------------------------------------------------------------------------------
def test_task_is_read_from_the_checkpoint(checkpoints):
    for task, directory in checkpoints.items():
        assert pipeline(model=directory).task == task


def test_model_instance_with_tokenizer(checkpoints):
    model = ConvBertForMaskedLM.from_pretrained(checkpoints["fill-mask"])
    ours = pipeline("fill-mask", model=model)  # the tokenizer comes from model.name_or_path
    given = pipeline("fill-mask", model=model, tokenizer=ConvBertTokenizerFast(), device="cpu", top_k=2)
    assert ours("a [MASK] b", top_k=2) == given("a [MASK] b")


def test_unknown_task_lists_the_supported_ones(checkpoints):
    with pytest.raises(ConfigError, match="unknown task 'fill_mask'; the supported tasks are: fill-mask") \
            as e:
        pipeline("fill_mask", model=checkpoints["fill-mask"])
    for task in supported_tasks():
        assert task in str(e.value)


def test_fill_mask_needs_a_mask_token(checkpoints):
    ours = pipeline("fill-mask", model=checkpoints["fill-mask"])
    with pytest.raises(InputError, match=r"input 1: no \[MASK\] token in 'no mask here'"):
        ours(["a [MASK]", "no mask here"])


def test_model_class_must_fit_the_task(checkpoints):
    with pytest.raises(ConfigError, match="text-classification needs a ConvBertForSequenceClassification, "
                                          "got a ConvBertModel"):
        pipeline("text-classification", model=ConvBertModel(ConvBertConfig(**SIZES)),
                 tokenizer=ConvBertTokenizerFast())
    with pytest.raises(ConfigError, match=r"is a ConvBertForMaskedLM checkpoint .* but text-classification "
                                          r"needs a ConvBertForSequenceClassification"):
        pipeline("text-classification", model=checkpoints["fill-mask"])


def test_clear_errors_for_parameters_and_inputs(checkpoints, tmp_path):
    ours = pipeline("token-classification", model=checkpoints["token-classification"])
    with pytest.raises(InputError, match="does not take 'aggregation'; its parameters are: "
                                         "aggregation_strategy"):
        ours("x", aggregation="simple")
    with pytest.raises(InputError, match="aggregation_strategy must be one of none, simple"):
        ours("x", aggregation_strategy="mean")
    with pytest.raises(InputError, match="input 0: token-classification takes a text"):
        ours([3])
    classify = pipeline("text-classification", model=checkpoints["text-classification"])
    with pytest.raises(InputError, match="input 0: it is 322 tokens long but the model reads at most 64"):
        classify("word " * 320)
    ConvBertForMaskedLM(ConvBertConfig(**SIZES)).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match=r"no tokenizer at .*pass tokenizer="):
        pipeline("fill-mask", model=tmp_path)
