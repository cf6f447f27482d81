"""Edge cases of the Hugging Face parity promise: same inputs, outputs, losses, gradients and checkpoints.

Every comparison runs transformers' ConvBERT and ours on the same (randomised) weights. Divergences that are
known bugs are marked ``xfail(strict=True)`` with the reason, so that fixing one turns its test red until the
marker is removed.
"""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch
from conftest import tiny_config_kwargs

import convbert
from convbert.interop import hf_keys

transformers = pytest.importorskip("transformers")

TOL = 1e-5
BASE = "ConvBertModel"
MLM = "ConvBertForMaskedLM"
SEQ = "ConvBertForSequenceClassification"
TOK = "ConvBertForTokenClassification"
QA = "ConvBertForQuestionAnswering"
MC = "ConvBertForMultipleChoice"
TASKS = [MLM, SEQ, TOK, QA, MC]
CLASSES = [BASE, *TASKS]
HEADS = {MLM: "masked_lm", SEQ: "sequence_classification", TOK: "token_classification",
         QA: "question_answering", MC: "multiple_choice", BASE: None}
B, L, VOCAB, EMB = 3, 12, 97, 16
NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


# -- helpers ---------------------------------------------------------------------------------------
def _randomize(model: torch.nn.Module, seed: int) -> None:
    """Random values everywhere (biases and LayerNorms too) so that no mis-mapped tensor hides."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)


def _hf_model(name: str, seed: int = 3, **overrides):
    torch.manual_seed(0)
    hf = getattr(transformers, name)(transformers.ConvBertConfig(**tiny_config_kwargs(**overrides)))
    _randomize(hf, seed)
    if hasattr(hf, "tie_weights"):
        hf.tie_weights()
    return hf.eval()


def _pair(name: str, path, seed: int = 3, **overrides):
    """(transformers model, our model loaded from its checkpoint), both in eval mode."""
    hf = _hf_model(name, seed, **overrides)
    hf.save_pretrained(path)
    return hf, getattr(convbert, name).from_pretrained(path).eval()


def _diff(a, b) -> float:
    """Max abs difference of two tensors or (nested) tuples; NaNs must sit at the same places."""
    if isinstance(a, (tuple, list)):
        assert isinstance(b, (tuple, list)) and len(a) == len(b), (len(a), len(b))
        return max([0.0, *(_diff(x, y) for x, y in zip(a, b, strict=True))])
    assert torch.is_tensor(a) and torch.is_tensor(b), (type(a), type(b))
    assert a.shape == b.shape, (a.shape, b.shape)
    assert torch.equal(a.isnan(), b.isnan()), "NaN at different places"
    keep = ~a.isnan()
    return (a[keep].double() - b[keep].double()).abs().max().item() if keep.any() else 0.0


def _assert_same(ref, out, tol: float = TOL) -> None:
    """Same output kind (mapping or tuple), same keys in the same order, same values."""
    if isinstance(ref, tuple):
        assert isinstance(out, tuple) and not hasattr(out, "keys"), type(out)
        assert _diff(ref, out) <= tol
        return
    assert list(ref.keys()) == list(out.keys())
    for key in ref:
        assert _diff(ref[key], out[key]) <= tol, key


def _batch(batch_size: int = B, length: int = L, seed: int = 1, padded_row: bool = False):
    """Right-padded (input_ids, attention_mask, token_type_ids); ``padded_row``: the last row all padding."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (batch_size, length), generator=g)
    mask = torch.ones(batch_size, length, dtype=torch.long)
    if batch_size > 1:
        mask[0, length * 2 // 3:] = 0
    if padded_row:
        mask[-1] = 0
    ids = ids.masked_fill(mask == 0, 0)
    types = torch.zeros(batch_size, length, dtype=torch.long)
    types[:, length // 2:] = 1
    return ids, mask, types * mask


def _inputs(name: str, batch_size: int = B, length: int = L, num_choices: int = 2, **kw) -> dict:
    """Model inputs for a class; multiple choice gets (batch, num_choices, length) with differing choices."""
    ids, mask, types = _batch(batch_size, length, **kw)
    args = dict(input_ids=ids, attention_mask=mask, token_type_ids=types)
    if name == MC:
        args = {k: v[:, None].repeat(1, num_choices, 1) for k, v in args.items()}
        for c in range(1, num_choices):
            args["input_ids"][:, c, 0] = 1 + c
    return args


def _labels(name: str, args: dict, num_labels: int = 2) -> dict:
    g = torch.Generator().manual_seed(5)
    ids = args["input_ids"]
    batch = ids.shape[0]
    if name == MLM:
        labels = torch.where(torch.rand(ids.shape, generator=g) < 0.3, ids, -100)
        labels[0, 0] = ids[0, 0]
        return dict(labels=labels)
    if name == SEQ:
        return dict(labels=torch.randint(0, num_labels, (batch,), generator=g))
    if name == TOK:
        labels = torch.randint(0, num_labels, ids.shape, generator=g)
        if "attention_mask" in args:
            labels = labels.masked_fill(args["attention_mask"] == 0, -100)
        return dict(labels=labels)
    if name == QA:
        return dict(start_positions=torch.randint(0, ids.shape[1], (batch,), generator=g),
                    end_positions=torch.randint(0, ids.shape[1], (batch,), generator=g))
    if name == MC:
        return dict(labels=torch.randint(0, ids.shape[1], (batch,), generator=g))
    return {}


def _run_both(hf, ours, **args):
    with torch.no_grad():
        return hf(**args), ours(**args)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models: one thread avoids the stalls of two threads on a busy machine (and is faster anyway)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """One (transformers, ours) pair per class on the tiny config, shared by the read-only tests."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = _pair(name, tmp_path_factory.mktemp(name))
        hf, ours = cache[name]
        return hf.eval(), ours.eval()

    return get


# -- inputs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", CLASSES)
def test_inputs_embeds_instead_of_input_ids(name, pairs):
    hf, ours = pairs(name)
    args = _inputs(name)
    ids = args.pop("input_ids")
    g = torch.Generator().manual_seed(7)
    args["inputs_embeds"] = torch.randn(*ids.shape, EMB, generator=g)
    _assert_same(*_run_both(hf, ours, **args, output_hidden_states=True))


def test_inputs_embeds_gradient_matches(pairs):
    hf, ours = pairs(BASE)
    _, mask, types = _batch()
    embeds = torch.randn(B, L, EMB, generator=torch.Generator().manual_seed(8))
    grads = []
    for model in (hf, ours):
        x = embeds.clone().requires_grad_()
        out = model(inputs_embeds=x, attention_mask=mask, token_type_ids=types).last_hidden_state
        (out * torch.linspace(-1, 1, out.shape[-1])).sum().backward()
        grads.append(x.grad)
    assert _diff(*grads) <= TOL


@pytest.mark.parametrize("shape", ["1xL", "BxL"])
@pytest.mark.parametrize("name", [BASE, SEQ, MC])
def test_custom_position_ids(name, shape, pairs):
    hf, ours = pairs(name)
    args = _inputs(name)
    g = torch.Generator().manual_seed(9)
    if shape == "1xL":
        position_ids = torch.arange(L)[None] + 7
    else:
        position_ids = torch.randint(0, 40, args["input_ids"].shape, generator=g)
    _assert_same(*_run_both(hf, ours, **args, position_ids=position_ids))


@pytest.mark.parametrize("drop", ["attention_mask", "token_type_ids", "both"])
@pytest.mark.parametrize("name", CLASSES)
def test_optional_inputs_omitted(name, drop, pairs):
    hf, ours = pairs(name)
    args = _inputs(name)
    for key in ("attention_mask", "token_type_ids"):
        if drop in (key, "both"):
            del args[key]
    _assert_same(*_run_both(hf, ours, **args, **_labels(name, args)))


@pytest.mark.parametrize("dtype", [torch.long, torch.int32, torch.bool, torch.float32])
def test_attention_mask_dtypes_with_a_fully_padded_row(dtype, pairs):
    hf, ours = pairs(BASE)
    ids, mask, types = _batch(padded_row=True)
    ref, out = _run_both(hf, ours, input_ids=ids, attention_mask=mask.to(dtype), token_type_ids=types,
                         output_attentions=True, output_hidden_states=True)
    _assert_same(ref, out)
    assert torch.isfinite(out.last_hidden_state).all()


@pytest.mark.parametrize("name", CLASSES)
def test_fully_padded_row_every_class(name, pairs):
    hf, ours = pairs(name)
    args = _inputs(name, padded_row=True)
    _assert_same(*_run_both(hf, ours, **args, **_labels(name, args)))


@pytest.mark.parametrize("size", [(1, L), (B, 1), (1, 1)], ids=["batch1", "length1", "batch1-length1"])
@pytest.mark.parametrize("name", CLASSES)
def test_batch_size_one_and_length_one(name, size, pairs):
    hf, ours = pairs(name)
    args = _inputs(name, *size)
    _assert_same(*_run_both(hf, ours, **args, **_labels(name, args), output_attentions=True))


def test_length_equal_to_max_position_embeddings(tmp_path):
    hf, ours = _pair(BASE, tmp_path, max_position_embeddings=L)
    ids, mask, types = _batch()
    _assert_same(*_run_both(hf, ours, input_ids=ids, attention_mask=mask, token_type_ids=types))


def test_one_dimensional_position_ids(pairs):
    hf, ours = pairs(BASE)
    ids, mask, _ = _batch()
    _assert_same(*_run_both(hf, ours, input_ids=ids, attention_mask=mask, position_ids=torch.arange(L) + 2))


def test_broadcast_token_type_ids(pairs):
    hf, ours = pairs(BASE)
    ids, mask, _ = _batch()
    types = (torch.arange(L) >= 4).long()[None]
    _assert_same(*_run_both(hf, ours, input_ids=ids, attention_mask=mask, token_type_ids=types))


def test_attention_mask_values_other_than_one(pairs):
    hf, ours = pairs(BASE)
    ids, mask, types = _batch()
    _assert_same(*_run_both(hf, ours, input_ids=ids, attention_mask=mask * 2, token_type_ids=types))


# -- output flags in the config --------------------------------------------------------------------
@pytest.mark.parametrize("flags", [dict(output_hidden_states=True), dict(output_attentions=True),
                                   dict(output_hidden_states=True, output_attentions=True)],
                         ids=["hidden", "attentions", "both"])
@pytest.mark.parametrize("name", CLASSES)
def test_output_flags_set_in_the_config(name, flags, tmp_path):
    hf, ours = _pair(name, tmp_path, **flags)
    assert all(getattr(ours.config, k) is True for k in flags)
    args = _inputs(name)
    ref, out = _run_both(hf, ours, **args, **_labels(name, args))
    _assert_same(ref, out)
    assert ("hidden_states" in out) == ("output_hidden_states" in flags)
    assert ("attentions" in out) == ("output_attentions" in flags)


@pytest.mark.parametrize("name", CLASSES)
def test_return_dict_false_set_in_the_config(name, tmp_path):
    """transformers' task classes crash with ``config.return_dict=False`` ('tuple' object has no attribute
    'hidden_states'), so the reference is the call-time flag; ours honours the config."""
    hf = _hf_model(name, output_hidden_states=True)
    hf.save_pretrained(tmp_path)
    ours = getattr(convbert, name).from_pretrained(tmp_path, return_dict=False).eval()
    args = _inputs(name)
    with torch.no_grad():
        ref, out = hf(**args, return_dict=False), ours(**args)
    _assert_same(ref, out)
    if name == BASE:  # the base model honours the config flag in transformers too
        hf.config.return_dict = False
        with torch.no_grad():
            _assert_same(hf(**args), out)


@pytest.mark.parametrize("with_labels", [False, True], ids=["no-labels", "labels"])
@pytest.mark.parametrize("flags", [{}, dict(output_hidden_states=True),
                                   dict(output_hidden_states=True, output_attentions=True)],
                         ids=["plain", "hidden", "all"])
@pytest.mark.parametrize("name", CLASSES)
def test_return_dict_false_tuple_contents(name, flags, with_labels, pairs):
    hf, ours = pairs(name)
    args = _inputs(name)
    if with_labels:
        args.update(_labels(name, args))
    ref, out = _run_both(hf, ours, **args, **flags, return_dict=False)
    assert type(out) is tuple and len(out) == len(ref)
    assert [isinstance(t, tuple) for t in ref] == [isinstance(t, tuple) for t in out]
    assert _diff(ref, out) <= TOL
    with torch.no_grad():  # the tuple is the dict's values, in order
        assert _diff(tuple(ours(**args, **flags).values()), out) == 0.0


# -- sequence classification losses ----------------------------------------------------------------
SEQ_CASES = {
    "regression-B": (dict(num_labels=1), lambda g: torch.randn(B, generator=g)),
    "regression-Bx1": (dict(num_labels=1), lambda g: torch.randn(B, 1, generator=g)),
    "regression-long-labels": (dict(num_labels=1), lambda g: torch.randint(0, 3, (B,), generator=g)),
    "single-label-long": (dict(num_labels=3), lambda g: torch.randint(0, 3, (B,), generator=g)),
    "single-label-Bx1": (dict(num_labels=3), lambda g: torch.randint(0, 3, (B, 1), generator=g)),
    "multi-label-float": (dict(num_labels=3), lambda g: torch.randint(0, 2, (B, 3), generator=g).float()),
    "explicit-regression-3": (dict(num_labels=3, problem_type="regression"),
                              lambda g: torch.randn(B, 3, generator=g)),
    "explicit-single-label": (dict(num_labels=3, problem_type="single_label_classification"),
                              lambda g: torch.randint(0, 3, (B,), generator=g)),
    "explicit-multi-label": (dict(num_labels=3, problem_type="multi_label_classification"),
                             lambda g: torch.rand(B, 3, generator=g)),
    "explicit-regression-1": (dict(num_labels=1, problem_type="regression"),
                              lambda g: torch.randn(B, generator=g)),
}


@pytest.mark.parametrize("case", list(SEQ_CASES))
def test_sequence_classification_losses(case, tmp_path):
    config, make_labels = SEQ_CASES[case]
    hf, ours = _pair(SEQ, tmp_path, **config)
    args = _inputs(SEQ)
    labels = make_labels(torch.Generator().manual_seed(11))
    ref, out = _run_both(hf, ours, **args, labels=labels)
    _assert_same(ref, out)
    assert out.loss.dtype == ref.loss.dtype
    assert hf.config.problem_type is not None
    assert ours.config.problem_type == hf.config.problem_type
    # saved after inference, the inferred problem type travels with the checkpoint
    ours.save_pretrained(tmp_path / "again")
    saved = transformers.ConvBertConfig.from_pretrained(tmp_path / "again")
    assert saved.problem_type == hf.config.problem_type


def test_sequence_classification_int32_labels_fail_alike(tmp_path):
    """torch's cross-entropy refuses int32 targets: both implementations raise the same error."""
    hf, ours = _pair(SEQ, tmp_path, num_labels=3)
    args = _inputs(SEQ)
    labels = torch.tensor([0, 2, 1], dtype=torch.int32)
    with pytest.raises(RuntimeError, match="Long") as ref:
        hf(**args, labels=labels)
    with pytest.raises(RuntimeError, match="Long") as out:
        ours(**args, labels=labels)
    assert str(ref.value) == str(out.value)


@pytest.mark.parametrize("num_labels", [1, 3])
def test_sequence_classification_float64_labels_loss_dtype(num_labels, tmp_path):
    hf, ours = _pair(SEQ, tmp_path, num_labels=num_labels)
    args = _inputs(SEQ)
    labels = torch.rand(B, num_labels, generator=torch.Generator().manual_seed(2)).double().squeeze(-1)
    ref, out = _run_both(hf, ours, **args, labels=labels)
    assert out.loss.dtype == ref.loss.dtype == torch.float64


def test_problem_type_changed_on_the_config_after_construction(tmp_path):
    hf, ours = _pair(SEQ, tmp_path, num_labels=3)
    hf.config.problem_type = ours.config.problem_type = "regression"
    args = _inputs(SEQ)
    labels = torch.randn(B, 3, generator=torch.Generator().manual_seed(3))
    ref, out = _run_both(hf, ours, **args, labels=labels)
    assert ours.config.problem_type == "regression"
    _assert_same(ref, out)


# -- question answering ----------------------------------------------------------------------------
QA_CASES = {
    "out-of-range": ([1, 30, -4], [2, 12, 40]),
    "two-dim": ([[1], [3], [11]], [[2], [5], [11]]),
    "mixed-dims": ([1, 3, 50], [[2], [5], [0]]),
    "all-ignored": ([12, 30, 99], [12, 13, 40]),  # NaN loss in both
}


@pytest.mark.parametrize("case", list(QA_CASES))
def test_question_answering_positions(case, pairs):
    hf, ours = pairs(QA)
    start, end = (torch.tensor(v) for v in QA_CASES[case])
    args = _inputs(QA)
    ref, out = _run_both(hf, ours, **args, start_positions=start, end_positions=end)
    _assert_same(ref, out)
    assert out.loss.isnan().item() == (case == "all-ignored")


# -- masked LM -------------------------------------------------------------------------------------
def test_masked_lm_all_labels_ignored_gives_nan_as_transformers(pairs):
    hf, ours = pairs(MLM)
    args = _inputs(MLM)
    ref, out = _run_both(hf, ours, **args, labels=torch.full((B, L), -100))
    assert ref.loss.isnan() and out.loss.isnan()
    _assert_same(ref, out)


def test_masked_lm_all_labels_ignored_gradients(tmp_path):
    hf, ours = _pair(MLM, tmp_path, **NO_DROPOUT)
    args = _inputs(MLM)
    for model in (hf, ours):
        model.train()
        model(**args, labels=torch.full((B, L), -100)).loss.backward()
    grads, _ = hf_keys.to_hf({n: p.grad for n, p in ours.named_parameters()}, "masked_lm")
    for name, p in hf.named_parameters():
        assert _diff(p.grad, grads[name]) <= TOL, name


def test_masked_lm_tied_decoder_shares_the_word_embeddings(pairs):
    _, ours = pairs(MLM)
    assert ours.get_output_embeddings().weight is ours.get_input_embeddings().weight


def test_masked_lm_untied_checkpoints_both_ways(tmp_path):
    hf, ours = _pair(MLM, tmp_path / "hf", tie_word_embeddings=False)
    assert ours.get_output_embeddings().weight is not ours.get_input_embeddings().weight
    assert not torch.equal(ours.get_output_embeddings().weight, ours.get_input_embeddings().weight)
    args = _inputs(MLM)
    labels = _labels(MLM, args)
    _assert_same(*_run_both(hf, ours, **args, **labels))
    # ours -> transformers
    config = convbert.ConvBertConfig(**tiny_config_kwargs(tie_word_embeddings=False))
    ours2 = convbert.ConvBertForMaskedLM(config)
    _randomize(ours2, seed=12)
    ours2.eval().save_pretrained(tmp_path / "ours")
    hf2 = transformers.ConvBertForMaskedLM.from_pretrained(tmp_path / "ours").eval()
    assert torch.equal(hf2.generator_lm_head.weight, ours2.head.decoder.weight)
    _assert_same(*_run_both(hf2, ours2, **args, **labels))


# -- configuration variants ------------------------------------------------------------------------
ACTIVATIONS = ["gelu", "gelu_new", "relu", "silu", "swish", "gelu_fast", "quick_gelu", "gelu_pytorch_tanh",
               "mish", "tanh", "sigmoid", "linear"]


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_hidden_act_variants(act, tmp_path):
    """hidden_act reaches the FFN and the sequence-classification head (the masked-LM head is always GELU)."""
    hf, ours = _pair(SEQ, tmp_path, hidden_act=act, num_hidden_layers=1)
    args = _inputs(SEQ)
    _assert_same(*_run_both(hf, ours, **args, **_labels(SEQ, args), output_hidden_states=True))


def test_every_parameter_free_transformers_activation_is_accepted():
    from transformers.activations import ACT2FN

    with_params = {"prelu", "xielu"}  # learnable activations: would need their own weights mapped
    refused = []
    for act in sorted(set(ACT2FN) - with_params):
        try:
            convbert.ConvBertConfig(**tiny_config_kwargs(hidden_act=act))
        except convbert.errors.ConfigError:
            refused.append(act)
    assert refused == []


def test_masked_lm_head_uses_gelu_whatever_hidden_act(tmp_path):
    hf, ours = _pair(MLM, tmp_path, hidden_act="relu", num_hidden_layers=1)
    _assert_same(*_run_both(hf, ours, **_inputs(MLM)))


@pytest.mark.parametrize("name", [SEQ, TOK])
def test_classifier_dropout(name, tmp_path):
    hf, ours = _pair(name, tmp_path, classifier_dropout=0.3, hidden_dropout_prob=0.05)
    hf_p = {m.p for n, m in hf.named_modules()
            if isinstance(m, torch.nn.Dropout) and not n.startswith("convbert")}
    ours_p = {m.p for m in ours.head.modules() if isinstance(m, torch.nn.Dropout)}
    assert hf_p == ours_p == {0.3}
    args = _inputs(name)
    _assert_same(*_run_both(hf, ours, **args, **_labels(name, args)))


CONFIG_VARIANTS = {
    "pad-none": dict(pad_token_id=None),
    "type-vocab-1": dict(type_vocab_size=1),
    "type-vocab-3": dict(type_vocab_size=3),
    "no-projection": dict(embedding_size=32),
    "head-ratio-above-heads": dict(head_ratio=8),
    "head-ratio-equals-heads": dict(head_ratio=4),
    "one-layer-kernel-1": dict(num_hidden_layers=1, conv_kernel_size=1),
    "big-layer-norm-eps": dict(layer_norm_eps=0.5),  # a LayerNorm built with the wrong eps would show
    "heads-not-dividing-hidden": dict(hidden_size=36, num_attention_heads=8, head_ratio=3,
                                      intermediate_size=48),
}


@pytest.mark.parametrize("variant", list(CONFIG_VARIANTS))
@pytest.mark.parametrize("name", [MLM, TOK])
def test_config_variants(name, variant, tmp_path):
    config = CONFIG_VARIANTS[variant]
    hf, ours = _pair(name, tmp_path, **config)
    args = _inputs(name)
    if variant == "type-vocab-1":
        args["token_type_ids"] = torch.zeros_like(args["token_type_ids"])
    elif variant == "type-vocab-3":
        args["token_type_ids"] = args["token_type_ids"] * 2
    if variant == "no-projection":
        assert ours.convbert.embeddings.project is None and not hasattr(hf.convbert, "embeddings_project")
    _assert_same(*_run_both(hf, ours, **args, **_labels(name, args), output_attentions=True))
    # and back: our checkpoint of the variant loads in transformers with the same numbers
    ours.save_pretrained(tmp_path / "ours")
    hf2 = getattr(transformers, name).from_pretrained(tmp_path / "ours").eval()
    _assert_same(*_run_both(hf2, ours, **args))


def test_zero_layers_last_hidden_state(tmp_path):
    hf, ours = _pair(BASE, tmp_path, num_hidden_layers=0)
    ids, mask, types = _batch()
    ref, out = _run_both(hf, ours, input_ids=ids, attention_mask=mask, token_type_ids=types)
    _assert_same(ref, out)


def test_zero_layers_hidden_states(tmp_path):
    """Deliberate divergence: with no layers transformers 5 returns hidden_states=() (its output capture hooks
    the layers); ours keeps the documented num_layers + 1 entries, here the embeddings alone."""
    hf, ours = _pair(BASE, tmp_path, num_hidden_layers=0)
    ids, mask, _ = _batch()
    ref, out = _run_both(hf, ours, input_ids=ids, attention_mask=mask, output_hidden_states=True)
    assert torch.allclose(ref.last_hidden_state, out.last_hidden_state, atol=1e-5)
    assert len(out.hidden_states) == 1 and torch.equal(out.hidden_states[0], out.last_hidden_state)


# -- multiple choice -------------------------------------------------------------------------------
@pytest.mark.parametrize("num_choices", [1, 4])
def test_multiple_choice_num_choices(num_choices, pairs):
    hf, ours = pairs(MC)
    args = _inputs(MC, num_choices=num_choices)
    labels = torch.randint(0, num_choices, (B,), generator=torch.Generator().manual_seed(4))
    ref, out = _run_both(hf, ours, **args, labels=labels, output_hidden_states=True)
    assert out.logits.shape == (B, num_choices)
    _assert_same(ref, out)


SUMMARIES = {
    "first": dict(summary_type="first"),
    "mean": dict(summary_type="mean"),
    "last": dict(summary_type="last"),
    "first-proj-tanh": dict(summary_type="first", summary_use_proj=True, summary_activation="tanh"),
    "mean-proj-dropouts": dict(summary_type="mean", summary_use_proj=True, summary_activation="gelu",
                               summary_first_dropout=0.2, summary_last_dropout=0.1),
}


@pytest.mark.parametrize("summary", list(SUMMARIES))
def test_multiple_choice_summary_from_the_config(summary, tmp_path):
    hf, ours = _pair(MC, tmp_path / "hf", **SUMMARIES[summary])
    args = _inputs(MC, num_choices=3)
    labels = dict(labels=torch.tensor([0, 2, 1]))
    _assert_same(*_run_both(hf, ours, **args, **labels))
    # ours -> transformers keeps the summary fields
    ours.save_pretrained(tmp_path / "ours")
    assert json.loads((tmp_path / "ours" / "config.json").read_text())["summary_type"] == SUMMARIES[summary][
        "summary_type"]
    hf2 = transformers.ConvBertForMultipleChoice.from_pretrained(tmp_path / "ours").eval()
    _assert_same(*_run_both(hf2, ours, **args, **labels))


def test_multiple_choice_summary_cls_index(tmp_path):
    hf, ours = _pair(MC, tmp_path, summary_type="cls_index")
    _assert_same(*_run_both(hf, ours, **_inputs(MC)))


# -- checkpoints -----------------------------------------------------------------------------------
def test_hf_base_checkpoint_into_each_task_class(tmp_path, caplog):
    hf = _hf_model(BASE)
    hf.save_pretrained(tmp_path)
    ids, mask, types = _batch()
    with torch.no_grad():
        ref = hf(ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    for name in TASKS:
        with caplog.at_level(logging.WARNING, logger="convbert.modeling"):
            ours = getattr(convbert, name).from_pretrained(tmp_path).eval()
        assert "newly initialised head" in caplog.text
        caplog.clear()
        with torch.no_grad():
            out = ours.convbert(ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        assert _diff(ref, out) <= TOL, name
        head_std = torch.cat([p.flatten() for n, p in ours.head.named_parameters() if n.endswith("weight")
                              and p.dim() == 2 and p is not ours.get_input_embeddings().weight]).std()
        assert head_std < 0.1, name  # freshly initialised (std 0.02), not the randomised 0.2


@pytest.mark.parametrize("name", TASKS)
def test_hf_task_checkpoint_into_our_base_model(name, tmp_path):
    hf = _hf_model(name, seed=6)
    hf.save_pretrained(tmp_path)
    ours = convbert.ConvBertModel.from_pretrained(tmp_path).eval()
    ids, mask, types = _batch()
    ref, out = _run_both(hf.convbert, ours, input_ids=ids, attention_mask=mask, token_type_ids=types,
                         output_hidden_states=True, output_attentions=True)
    _assert_same(ref, out)


@pytest.mark.parametrize("name", TASKS)
def test_our_task_checkpoint_into_other_classes(name, tmp_path):
    """Ours saved with a head: transformers' base model and every other task class (ours and theirs) load the
    encoder; the foreign head is ignored."""
    ours = getattr(convbert, name)(convbert.ConvBertConfig(**tiny_config_kwargs())).eval()
    _randomize(ours, seed=10)
    ours.save_pretrained(tmp_path)
    ids, mask, types = _batch()
    args = dict(input_ids=ids, attention_mask=mask, token_type_ids=types)
    with torch.no_grad():
        ref = ours.convbert(**args).last_hidden_state
        assert _diff(transformers.ConvBertModel.from_pretrained(tmp_path).eval()(**args)[0], ref) <= TOL
        assert _diff(convbert.ConvBertModel.from_pretrained(tmp_path).eval()(**args)[0], ref) <= TOL
        other = MLM if name != MLM else QA
        for lib in (transformers, convbert):
            model = getattr(lib, other).from_pretrained(tmp_path).eval()
            assert _diff(model.convbert(**args)[0], ref) <= TOL, lib.__name__


@pytest.mark.parametrize("name", CLASSES)
def test_positional_arguments(name, pairs):
    """input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds in transformers' order."""
    hf, ours = pairs(name)
    args = _inputs(name)
    positional = (args["input_ids"], args["attention_mask"], args["token_type_ids"])
    with torch.no_grad():
        _assert_same(hf(*positional), ours(*positional))


def test_our_base_checkpoint_into_hf_task_classes(tmp_path):
    ours = convbert.ConvBertModel(convbert.ConvBertConfig(**tiny_config_kwargs())).eval()
    _randomize(ours, seed=9)
    ours.save_pretrained(tmp_path)
    ids, mask, types = _batch()
    for name in TASKS:
        hf = getattr(transformers, name).from_pretrained(tmp_path).eval()
        ref, out = _run_both(hf.convbert, ours, input_ids=ids, attention_mask=mask, token_type_ids=types)
        _assert_same(ref, out)


@pytest.mark.parametrize("variant", ["safe", "unsafe-flag", "sharded"])
@pytest.mark.parametrize("name", [MLM, MC])
def test_hf_save_variants_load_in_ours(name, variant, tmp_path):
    hf = _hf_model(name)
    if variant == "sharded":
        hf.save_pretrained(tmp_path, max_shard_size="20KB")
        assert (tmp_path / "model.safetensors.index.json").exists()
        assert len(list(tmp_path.glob("model-*.safetensors"))) > 1
    else:  # transformers 5 always writes safetensors; the flag is accepted and ignored
        hf.save_pretrained(tmp_path, safe_serialization=variant == "safe")
    ours = getattr(convbert, name).from_pretrained(tmp_path).eval()
    args = _inputs(name)
    _assert_same(*_run_both(hf, ours, **args, **_labels(name, args)))


def test_legacy_pickle_checkpoint_with_buffers(tmp_path):
    """Older transformers wrote pytorch_model.bin with the position_ids / token_type_ids buffers."""
    hf = _hf_model(MLM)
    hf.config.save_pretrained(tmp_path)
    state = dict(hf.state_dict())
    state["convbert.embeddings.position_ids"] = torch.arange(40)[None]
    state["convbert.embeddings.token_type_ids"] = torch.zeros(1, 40, dtype=torch.long)
    torch.save(state, tmp_path / "pytorch_model.bin")
    ours = convbert.ConvBertForMaskedLM.from_pretrained(tmp_path).eval()
    args = _inputs(MLM)
    _assert_same(*_run_both(hf, ours, **args, **_labels(MLM, args)))


@pytest.mark.parametrize("writer", ["transformers", "convbert"])
def test_from_pretrained_num_labels_override(writer, tmp_path):
    if writer == "transformers":
        _hf_model(BASE, num_labels=3).save_pretrained(tmp_path)  # config.json gets a 3-entry id2label
        assert len(json.loads((tmp_path / "config.json").read_text())["id2label"]) == 3
    else:
        convbert.ConvBertModel(convbert.ConvBertConfig(**tiny_config_kwargs())).save_pretrained(tmp_path)
    hf = transformers.ConvBertForSequenceClassification.from_pretrained(tmp_path, num_labels=5)
    ours = convbert.ConvBertForSequenceClassification.from_pretrained(tmp_path, num_labels=5)
    assert hf.config.num_labels == 5
    assert ours.config.num_labels == 5 and ours.head.classifier.out_proj.out_features == 5


def test_ignore_mismatched_sizes(tmp_path):
    _hf_model(MC).save_pretrained(tmp_path)  # classifier (1, H); token classification wants (2, H)
    hf = transformers.ConvBertForTokenClassification.from_pretrained(tmp_path, ignore_mismatched_sizes=True)
    assert hf.classifier.out_features == 2
    ours = convbert.ConvBertForTokenClassification.from_pretrained(tmp_path, ignore_mismatched_sizes=True)
    assert ours.head.classifier.out_features == 2
    assert not hasattr(ours.config, "ignore_mismatched_sizes")


def test_our_save_pretrained_accepts_transformers_arguments(pairs, tmp_path):
    _, ours = pairs(MLM)
    ours.save_pretrained(tmp_path, state_dict=ours.state_dict(), is_main_process=True, max_shard_size="20KB",
                         safe_serialization=True)
    shards = sorted(p.name for p in tmp_path.glob("model-*-of-*.safetensors"))
    assert len(shards) > 1 and (tmp_path / "model.safetensors.index.json").is_file()
    assert not (tmp_path / "model.safetensors").exists()
    hf = transformers.ConvBertForMaskedLM.from_pretrained(tmp_path).eval()
    _assert_same(*_run_both(hf, ours, **_inputs(MLM)))
    again = convbert.ConvBertForMaskedLM.from_pretrained(tmp_path)
    _assert_same(*_run_both(hf, again, **_inputs(MLM)))
    ours.save_pretrained(tmp_path)  # a save without sharding replaces the shards, never mixes with them
    assert sorted(p.name for p in tmp_path.glob("*.safetensors*")) == ["model.safetensors"]


def test_from_pretrained_dtype(tmp_path):
    _hf_model(BASE).save_pretrained(tmp_path)
    hf = transformers.ConvBertModel.from_pretrained(tmp_path, dtype=torch.float64)
    ours = convbert.ConvBertModel.from_pretrained(tmp_path, dtype=torch.float64)
    assert hf.dtype == ours.dtype == torch.float64


# -- training mode ---------------------------------------------------------------------------------
def _train_step_both(name, tmp_path, args, output_attentions=False):
    """One forward/backward in train mode with dropout 0; returns (hf, ours, hf loss, our loss)."""
    overrides = dict(NO_DROPOUT)
    if name == MC:
        overrides.update(summary_type="first", summary_use_proj=True, summary_activation="tanh")
    hf, ours = _pair(name, tmp_path, **overrides)
    losses = []
    for model in (hf.train(), ours.train()):
        out = model(**args, output_attentions=output_attentions)
        if name == BASE:
            loss = (out.last_hidden_state * torch.linspace(-1, 1, out.last_hidden_state.shape[-1])).sum()
        else:
            loss = out.loss
        loss.backward()
        losses.append(loss.detach())
    return hf, ours, *losses


def _assert_same_gradients(name, hf, ours):
    grads, unmapped = hf_keys.to_hf({n: p.grad for n, p in ours.named_parameters()}, HEADS[name])
    assert unmapped == []
    hf_grads = dict(hf.named_parameters())
    assert set(grads) == set(hf_grads)
    for key, p in hf_grads.items():
        assert _diff(p.grad, grads[key]) <= TOL, key


@pytest.mark.parametrize("name", CLASSES)
def test_train_mode_loss_and_gradients(name, tmp_path):
    """Dropout 0, train mode: same loss, same gradient for every parameter."""
    args = _inputs(name)
    args.update(_labels(name, args))
    hf, ours, ref, out = _train_step_both(name, tmp_path, args)
    assert _diff(ref, out) <= TOL
    _assert_same_gradients(name, hf, ours)


@pytest.mark.parametrize("output_attentions", [True, False], ids=["explicit-softmax", "sdpa"])
@pytest.mark.parametrize("name", [SEQ, MC])
def test_train_mode_gradients_with_a_fully_padded_row(name, output_attentions, tmp_path):
    args = _inputs(name, padded_row=True)
    args.update(_labels(name, args))
    hf, ours, ref, out = _train_step_both(name, tmp_path, args, output_attentions)
    assert _diff(ref, out) <= TOL
    _assert_same_gradients(name, hf, ours)


# -- grad mode and eval / train --------------------------------------------------------------------
@pytest.mark.parametrize("name", CLASSES)
def test_same_outputs_with_and_without_no_grad(name, pairs):
    hf, ours = pairs(name)
    args = _inputs(name)
    args.update(_labels(name, args))
    ref = hf(**args, output_attentions=True)
    out = ours(**args, output_attentions=True)
    _assert_same({k: v.detach() if torch.is_tensor(v) else v for k, v in ref.items()},
                 {k: v.detach() if torch.is_tensor(v) else v for k, v in out.items()})
    with torch.no_grad():
        out_ng = ours(**args, output_attentions=True)
    _assert_same(out_ng, {k: v.detach() if torch.is_tensor(v) else v for k, v in out.items()}, tol=1e-6)


def test_dropout_active_in_train_mode_only(tmp_path):
    _, ours = _pair(SEQ, tmp_path)
    args = _inputs(SEQ)
    ours.train()
    with torch.no_grad():
        first, second = ours(**args).logits, ours(**args).logits
    assert not torch.equal(first, second)
    ours.eval()
    with torch.no_grad():
        first, second = ours(**args).logits, ours(**args).logits
    assert torch.equal(first, second)
    assert not math.isnan(first.sum().item())
