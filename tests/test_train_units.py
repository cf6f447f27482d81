"""The training pieces on their own: metrics, masking, batching, the corpus vocabulary, the RTD model."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from convbert import build_model
from convbert.errors import ConfigError
from convbert.labels import IGNORE_INDEX
from convbert.train import metrics
from convbert.train.batching import BatchOrder, collate
from convbert.train.model_config import generator_composition
from convbert.train.tasks.base import training_registry
from convbert.train.tasks.replaced_token_detection import ReplacedTokenDetectionModel, sample
from convbert.train.token_masking import MaskingRule, mask_tokens
from convbert.train.vocabulary import corpus_vocabulary, shipped_tokenizer

TINY = {"hidden_size": 32, "num_layers": 1,
        "embedding": {"name": "bert", "vocab_size": 100, "embedding_size": 16, "max_position_embeddings": 64},
        "layer": {"name": "transformer", "ffn": {"name": "dense", "intermediate_size": 64},
                  "mixer": {"name": "mixed", "num_heads": 4, "head_ratio": 2,
                            "parts": [{"name": "self_attention"}, {"name": "span_conv", "kernel_size": 3}]}}}


# -- metrics ----------------------------------------------------------------------------------------------
def test_entity_f1_counts_exact_spans_like_seqeval():
    gold = [["B-CAP", "I-CAP", "O", "B-NUM"], ["O", "B-CAP"]]
    pred = [["B-CAP", "I-CAP", "O", "O"], ["O", "B-CAP"]]
    assert metrics.entity_f1(gold, pred) == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8})
    assert metrics.bio_spans(["I-CAP", "I-CAP", "B-CAP", "O"]) == {("CAP", 0, 2), ("CAP", 2, 3)}
    assert metrics.entity_f1([["O"]], [["O"]])["f1"] == 0.0


def test_squad_scores_normalise_like_the_official_script():
    assert metrics.squad_scores("The Eiffel Tower!", ["eiffel tower"]) == (1.0, 1.0)
    em, f1 = metrics.squad_scores("in Paris France", ["Paris"])
    assert em == 0.0 and f1 == pytest.approx(0.5)
    assert metrics.squad(["a", "b"], [["a"], ["c"]]) == {"exact_match": 0.5, "f1": 0.5}


def test_majority_baseline():
    assert metrics.majority_accuracy([1, 1, 0], [1, 0, 0, 0]) == 0.25


# -- masking ----------------------------------------------------------------------------------------------
def test_masking_selects_fifteen_percent_and_never_special_tokens():
    ids = torch.randint(10, 1000, (64, 128))
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    rng = torch.Generator().manual_seed(0)
    corrupted, labels = mask_tokens(ids, special, MaskingRule(), mask_token_id=4, vocab_size=1000,
                                    generator=rng)
    selected = labels != IGNORE_INDEX
    assert not selected[special].any()
    assert selected.float().mean().item() == pytest.approx(0.15, abs=0.01)
    assert torch.equal(labels[selected], ids[selected])
    shown = corrupted[selected]
    assert (shown == 4).float().mean().item() == pytest.approx(0.8, abs=0.03)
    assert (shown == ids[selected]).float().mean().item() == pytest.approx(0.1, abs=0.03)
    assert torch.equal(corrupted[~selected], ids[~selected])


def test_masking_is_reproducible_from_the_generator_state():
    ids, special = torch.randint(10, 50, (4, 16)), torch.zeros(4, 16, dtype=torch.bool)
    rng = torch.Generator().manual_seed(3)
    state = rng.get_state()
    first = mask_tokens(ids, special, MaskingRule(), 4, 50, rng)
    rng.set_state(state)
    assert all(torch.equal(a, b) for a, b in zip(first, mask_tokens(ids, special, MaskingRule(), 4, 50, rng),
                                                 strict=True))


# -- batching ---------------------------------------------------------------------------------------------
def test_batch_order_depends_on_seed_and_epoch_only():
    a, b = BatchOrder(10, 3, seed=0), BatchOrder(10, 3, seed=0)
    assert a.steps_per_epoch == 3 and a.epoch(1).tolist() == b.epoch(1).tolist()
    assert a.epoch(0).tolist() != a.epoch(1).tolist()
    assert len(BatchOrder(2, 8, seed=0).epoch(0)[0]) == 8, "fewer examples than a batch still make one batch"


@given(st.lists(st.integers(1, 200), min_size=1, max_size=400), st.integers(1, 16), st.integers(0, 3),
       st.sampled_from([1, 2, 3]))
@settings(max_examples=60, deadline=None)
def test_length_grouped_batches_are_a_shuffle_with_less_padding(lengths, batch_size, seed, world_size):
    plain = BatchOrder(len(lengths), batch_size, seed, world_size=world_size)
    grouped = [BatchOrder(len(lengths), batch_size, seed, rank, world_size, lengths)
               for rank in range(world_size)]
    assert all(g.steps_per_epoch == plain.steps_per_epoch for g in grouped)
    for epoch in (0, 1):
        per_rank = [g.epoch(epoch).tolist() for g in grouped]
        assert per_rank[0] == grouped[0].epoch(epoch).tolist(), "a function of (seed, epoch): resumable"
        steps = list(zip(*per_rank, strict=True))  # one global batch per step, ranks interleaved
        assert len(steps) == plain.steps_per_epoch
        taken = sorted(i for step in steps for batch in step for i in batch)
        ungrouped = _global(plain, epoch, world_size)
        assert taken == sorted(i for batch in ungrouped for i in batch), "the ungrouped epoch's examples"

        def padded(batches):
            return sum(len(b) * max(lengths[i] for i in b) for b in batches)

        assert padded([[i for batch in step for i in batch] for step in steps]) <= padded(ungrouped)


def _global(order: BatchOrder, epoch: int, world_size: int) -> list[list[int]]:
    """The ungrouped global batches: every rank's share of each step, joined."""
    ranks = [BatchOrder(order.num_examples, order.batch_size, order.seed, r, world_size).epoch(epoch).tolist()
             for r in range(world_size)]
    return [[i for batch in step for i in batch] for step in zip(*ranks, strict=True)]


def test_collate_pads_and_masks():
    batch = collate([{"input_ids": [2, 5, 3], "labels": [-100, 5, -100]},
                     {"input_ids": [2, 3], "labels": [-100, 1]}], pad_token_id=0)
    assert batch["input_ids"].tolist() == [[2, 5, 3], [2, 3, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [[-100, 5, -100], [-100, 1, -100]]
    choices = collate([{"input_ids": [[2, 3], [2, 4, 3]], "labels": 1, "_note": "skipped"}], pad_token_id=0)
    assert choices["input_ids"].shape == (1, 2, 3) and choices["labels"].tolist() == [1]
    assert "_note" not in choices


# -- vocabulary -------------------------------------------------------------------------------------------
def test_the_corpus_vocabulary_is_deterministic_and_spells_every_word():
    base = shipped_tokenizer()
    texts = ["The cat sat on the mat.", "Cats and dogs, 1999!"] * 3
    vocab = corpus_vocabulary(base, texts, 80)
    assert vocab == corpus_vocabulary(base, list(reversed(texts)), 80)
    assert list(vocab)[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] and len(vocab) <= 80
    from convbert.tokenization_fast import ConvBertTokenizerFast

    small = ConvBertTokenizerFast(vocab=vocab)
    ids = small("dogs sat on a cat", add_special_tokens=False)["input_ids"]
    assert small.unk_token_id not in ids and small.decode(ids) == "dogs sat on a cat"


# -- replaced-token detection -----------------------------------------------------------------------------
def test_the_generator_is_a_quarter_wide_and_shares_the_embeddings():
    training_registry()
    torch.manual_seed(0)
    discriminator = build_model({**TINY, "head": {"name": "replaced_token_detection"}})
    generator = build_model(generator_composition(TINY, 4))
    model = ReplacedTokenDetectionModel(discriminator, generator)
    assert generator.config.hidden_size == 8 and generator.config.num_hidden_layers == 1
    for name in ("word", "position", "token_type", "norm"):
        shared = getattr(discriminator.convbert.embeddings, name)
        assert getattr(generator.convbert.embeddings, name) is shared
    assert generator.head.decoder.weight is discriminator.convbert.embeddings.word.weight
    assert generator.convbert.embeddings.project is not None  # 16 -> 8, the generator's own

    ids = torch.randint(5, 100, (2, 12))
    mask = torch.ones_like(ids)
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[:, 3] = ids[:, 3]
    corrupted = ids.clone()
    corrupted[:, 3] = 4
    out = model(ids, corrupted, labels, mask, rng=torch.Generator().manual_seed(0))
    assert out.generator_logits.shape == (2, 100), "the generator's head runs at the masked positions only"
    assert out.labels[:, [0, 1, 2, 4]].sum() == 0, "only masked positions can be replaced"
    assert out.loss.item() == pytest.approx((out.generator_loss + 50 * out.discriminator_loss).item())
    out.loss.backward()
    assert discriminator.convbert.embeddings.word.weight.grad is not None


def test_a_tied_generator_is_the_discriminators_encoder_with_an_mlm_head():
    training_registry()
    discriminator = build_model({**TINY, "head": {"name": "replaced_token_detection"}})
    generator = build_model(generator_composition(TINY, 1))
    model = ReplacedTokenDetectionModel(discriminator, generator, tie_encoder=True)
    assert model.generator.convbert is model.discriminator.convbert
    assert generator.head.decoder.weight is discriminator.convbert.embeddings.word.weight
    encoder = sum(p.numel() for p in discriminator.convbert.parameters())
    assert sum(p.numel() for p in {id(p): p for p in model.parameters()}.values()) == \
        encoder + sum(p.numel() for p in discriminator.head.parameters()) + \
        sum(p.numel() for n, p in generator.head.named_parameters() if n != "decoder.weight")


def test_the_discriminator_is_not_judged_on_cls_and_sep():
    from types import SimpleNamespace

    from convbert.train.tasks.replaced_token_detection import ReplacedTokenDetection

    tokenizer = SimpleNamespace(cls_token_id=2, sep_token_id=3)
    batch = {"input_ids": torch.tensor([[2, 7, 8, 3, 9, 3, 0]]),
             "attention_mask": torch.tensor([[1, 1, 1, 1, 1, 1, 0]])}
    for judge, expected in ((False, [0, 1, 1, 0, 1, 0, 0]), (True, [1, 1, 1, 1, 1, 1, 0])):
        task = ReplacedTokenDetection.__new__(ReplacedTokenDetection)
        task.config, task.tokenizer = SimpleNamespace(judge_special_tokens=judge), tokenizer
        assert task.judged(batch).tolist() == [expected]


def test_a_tied_encoder_needs_a_generator_of_the_same_width():
    from convbert.train.cli import compose_config
    from convbert.train.schema import check_run

    with pytest.raises(ConfigError, match=r"tie_encoder.*generator_size_divisor=1"):
        check_run(compose_config(["task=pretrain_rtd", "task.tie_encoder=true"]))


@pytest.mark.parametrize("method", ["inverse_cdf", "gumbel", "multinomial"])
def test_sampling_follows_the_softmax(method):
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1]])).repeat(4000, 1)
    drawn = sample(logits, method, 1.0, torch.Generator().manual_seed(0))
    frequencies = torch.bincount(drawn, minlength=3).float() / 4000
    torch.testing.assert_close(frequencies, torch.tensor([0.7, 0.2, 0.1]), atol=0.03, rtol=0)


# -- question answering over long contexts ----------------------------------------------------------------
def _qa_task(doc_stride, max_question_length=16):
    from types import SimpleNamespace

    from convbert.tokenization_fast import ConvBertTokenizerFast
    from convbert.train.tasks.question_answering import QuestionAnswering

    config = SimpleNamespace(name="question_answering", max_answer_length=30, doc_stride=doc_stride,
                             max_question_length=max_question_length)
    return QuestionAnswering(config, ConvBertTokenizerFast())


CONTEXT = ("The river runs through the old town. " * 12) + "The bridge was built in 1887 by the guild."
RECORD = {"question": "When was the bridge built?", "context": CONTEXT,
          "answers": {"text": ["1887"], "answer_start": [CONTEXT.index("1887")]}}


def test_a_long_qa_context_is_read_in_overlapping_windows():
    features = _qa_task(doc_stride=8).encode([RECORD], max_length=48)
    assert len(features) > 3 and {f["_example"] for f in features} == {0}
    answered = [f for f in features if f["start_positions"] > 0]
    assert answered, "some window holds the answer at the end of the context"
    for f in answered:
        s, e = f["_offsets"][f["start_positions"]], f["_offsets"][f["end_positions"]]
        assert CONTEXT[s[0]:e[1]] == "1887"
    for f in features:
        assert len(f["input_ids"]) <= 48
        if f not in answered:
            assert f["start_positions"] == f["end_positions"] == 0  # [CLS]
    truncated = _qa_task(doc_stride=None).encode([RECORD], max_length=48)
    assert len(truncated) == 1 and truncated[0]["start_positions"] == 0  # the answer was cut off


def test_qa_evaluation_takes_the_best_span_over_a_questions_windows():
    task = _qa_task(doc_stride=8)
    features = task.encode([RECORD, {**RECORD, "question": "Where does the river run?"}], max_length=48)

    class Oracle(torch.nn.Module):  # high logits at the labelled answer of each window that holds one
        def forward(self, input_ids, attention_mask=None, token_type_ids=None):
            from types import SimpleNamespace

            starts = torch.zeros(input_ids.shape)
            ends = torch.zeros(input_ids.shape)
            for row, ids in enumerate(input_ids.tolist()):
                feature = next(f for f in features if f["input_ids"] == ids[:len(f["input_ids"])])
                if feature["start_positions"] > 0:
                    starts[row, feature["start_positions"]] = ends[row, feature["end_positions"]] = 10.0
            return SimpleNamespace(start_logits=starts, end_logits=ends)

    result = task.evaluate(Oracle(), features, batch_size=4, device=torch.device("cpu"),
                           autocast=__import__("contextlib").nullcontext())
    assert result == {"exact_match": 1.0, "f1": 1.0}, "one prediction per question, not per window"


def test_a_long_question_is_cut_and_one_too_long_for_its_windows_is_a_config_error():
    from convbert.errors import ConfigError

    long_question = {**RECORD, "question": "why " * 60}
    features = _qa_task(doc_stride=8, max_question_length=10).encode([long_question], max_length=48)
    assert all(f["token_type_ids"].count(0) == 10 + 2 for f in features)  # [CLS] 10 question tokens [SEP]
    assert any(f["start_positions"] > 0 for f in features)
    with pytest.raises(ConfigError, match="doc_stride"):
        _qa_task(doc_stride=8, max_question_length=None).encode([long_question], max_length=48)


def test_qa_window_settings_that_cannot_work_are_refused_before_reading_data():
    from convbert.errors import ConfigError

    with pytest.raises(ConfigError, match="must exceed the stride"):
        _qa_task(doc_stride=32, max_question_length=48).encode([RECORD], max_length=80)
    with pytest.raises(ConfigError, match="max_question_length=0"):
        _qa_task(doc_stride=8, max_question_length=0).encode([RECORD], max_length=48)
    assert _qa_task(doc_stride=32, max_question_length=48).encode([RECORD], max_length=84)
