"""PEFT (LoRA) on our six classes, against the same adapter on transformers' classes.

PEFT finds a task head by name (``modules_to_save``: ``classifier`` for SEQ_CLS / TOKEN_CLS, ``qa_outputs``
for QUESTION_ANS) and LoRA targets by name (``query``, ``value``: PEFT has no defaults for ConvBERT). These
tests check that the same recipe trains the same parameters here as there, saves and reloads, and merges to
the same weights.
"""

from __future__ import annotations

import pytest
import torch

peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

import convbert  # noqa: E402

KW = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
          num_labels=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
CASES = [  # class, PEFT task type (PEFT's defaults per task), num_labels
    ("ConvBertForSequenceClassification", "SEQ_CLS", 3),
    ("ConvBertForTokenClassification", "TOKEN_CLS", 3),
    ("ConvBertForQuestionAnswering", "QUESTION_ANS", 2),
    ("ConvBertForMultipleChoice", "SEQ_CLS", 3),
    ("ConvBertForMaskedLM", None, 3),
    ("ConvBertModel", "FEATURE_EXTRACTION", 3),
]


def pair(name: str, num_labels: int):
    """Ours and transformers' class with the same weights."""
    torch.manual_seed(0)
    ours = getattr(convbert, name)(convbert.ConvBertConfig(**{**KW, "num_labels": num_labels})).eval()
    config = transformers.ConvBertConfig(**{**KW, "num_labels": num_labels})
    theirs = getattr(transformers, name)(config).eval()
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def lora(task_type: str | None):
    return peft.LoraConfig(task_type=task_type, target_modules=["query", "value"], r=4, lora_alpha=8)


def inputs(name: str) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    shape = (2, 3, 7) if "MultipleChoice" in name else (2, 7)
    return {"input_ids": torch.randint(5, 99, shape, generator=g), "attention_mask": torch.ones(shape).long()}


def trainable(model) -> dict[str, tuple[int, ...]]:
    return {n: tuple(p.shape) for n, p in model.named_parameters() if p.requires_grad}


def without_lora(names) -> list[str]:
    return sorted(n for n in names if "lora_" not in n)


@pytest.mark.parametrize(("name", "task_type", "num_labels"), CASES)
def test_lora_trains_the_same_parameters_as_on_transformers(name, task_type, num_labels):
    ours, theirs = pair(name, num_labels)
    ours_t, theirs_t = trainable(peft.get_peft_model(ours, lora(task_type))), \
        trainable(peft.get_peft_model(theirs, lora(task_type)))
    assert sorted(ours_t.values()) == sorted(theirs_t.values())
    assert sum(1 for n in ours_t if "lora_A" in n) == sum(1 for n in theirs_t if "lora_A" in n) == 4
    # the head PEFT keeps trainable has transformers' module name (so its modules_to_save found it)
    heads = [n.split(".modules_to_save.")[0].rsplit(".", 1)[-1] for n in without_lora(ours_t)]
    assert heads == [n.split(".modules_to_save.")[0].rsplit(".", 1)[-1] for n in without_lora(theirs_t)]
    if task_type in ("SEQ_CLS", "TOKEN_CLS", "QUESTION_ANS"):
        assert heads, "the classification head must train with the adapter"


@pytest.mark.parametrize(("name", "task_type", "num_labels"), CASES[:3])
def test_adapter_saves_with_its_head_and_reloads(name, task_type, num_labels, tmp_path):
    ours, _ = pair(name, num_labels)
    model = peft.get_peft_model(ours, lora(task_type))
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)  # a trained adapter and head
    model.eval()
    expected = model(**inputs(name))[0]
    model.save_pretrained(tmp_path)
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "adapter_model.safetensors")
    assert any("lora_A" in k for k in saved) and any("lora_" not in k for k in saved), sorted(saved)
    fresh, _ = pair(name, num_labels)
    reloaded = peft.PeftModel.from_pretrained(fresh, tmp_path).eval()
    torch.testing.assert_close(reloaded(**inputs(name))[0], expected)


@pytest.mark.parametrize(("name", "task_type", "num_labels"), CASES)
def test_merged_weights_equal_transformers_merge_of_the_same_adapter(name, task_type, num_labels):
    ours, theirs = pair(name, num_labels)
    ours_p = peft.get_peft_model(ours, lora(task_type))
    theirs_p = peft.get_peft_model(theirs, lora(task_type))
    g = torch.Generator().manual_seed(2)
    ours_named, theirs_named = dict(ours_p.named_parameters()), dict(theirs_p.named_parameters())
    with torch.no_grad():
        for kind in ("lora_A", "lora_B"):  # the same adapter: layers in order, query before value
            ours_lora = sorted(n for n in ours_named if kind in n)
            theirs_lora = sorted(n for n in theirs_named if kind in n)
            for a, b in zip(ours_lora, theirs_lora, strict=True):
                value = torch.randn(ours_named[a].shape, generator=g) * 0.1
                ours_named[a].copy_(value)
                theirs_named[b].copy_(value)
        for a, b in zip(without_lora(trainable(ours_p)), without_lora(trainable(theirs_p)), strict=True):
            value = torch.randn(ours_named[a].shape, generator=g) * 0.1
            ours_named[a].copy_(value)
            theirs_named[b].copy_(value)
    merged_ours, merged_theirs = ours_p.merge_and_unload().eval(), theirs_p.merge_and_unload().eval()
    ours_state, theirs_state = merged_ours.state_dict(), merged_theirs.state_dict()
    for key, value in ours_state.items():
        torch.testing.assert_close(value, theirs_state[key], msg=key)
    torch.testing.assert_close(merged_ours(**inputs(name))[0], merged_theirs(**inputs(name))[0],
                               atol=1e-5, rtol=1e-4)


def test_gradient_checkpointing_with_enable_input_require_grads_trains_the_adapter():
    ours, _ = pair("ConvBertForSequenceClassification", 3)
    ours.gradient_checkpointing_enable()
    ours.enable_input_require_grads()
    model = peft.get_peft_model(ours, lora("SEQ_CLS")).train()
    loss = model(**inputs("ConvBertForSequenceClassification"), labels=torch.tensor([0, 2])).loss
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    wanted = {n: g for n, g in grads.items() if "lora_B" in n or "classifier" in n}
    assert wanted and all(g is not None and g.abs().sum() > 0 for g in wanted.values())
    assert ours.is_gradient_checkpointing


def test_a_merged_adapter_exports_to_onnx_and_runs_as_eager(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime

    from convbert.export import export_model

    ours, _ = pair("ConvBertForSequenceClassification", 3)
    model = peft.get_peft_model(ours, lora("SEQ_CLS"))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.1)
    merged = model.merge_and_unload().eval()
    path = export_model(merged, tmp_path / "model.onnx")
    batch = inputs("ConvBertForSequenceClassification")
    batch["token_type_ids"] = torch.zeros_like(batch["input_ids"])
    session = onnxruntime.InferenceSession(str(path))
    names = {i.name for i in session.get_inputs()}
    got = session.run(None, {k: v.numpy() for k, v in batch.items() if k in names})[0]
    torch.testing.assert_close(torch.from_numpy(got), merged(**batch).logits, atol=1e-4, rtol=1e-4)


def test_trainer_does_not_decay_our_norms_or_biases_as_on_transformers_class(tmp_path):
    """transformers' Trainer picks no-decay parameters by module type (LayerNorm) and by name (bias): our
    norms are named `norm`, not `LayerNorm`, and must still be excluded, as on transformers' class."""
    ours, theirs = pair("ConvBertForSequenceClassification", 3)
    args = transformers.TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    decayed = {m: set(transformers.Trainer(model=m, args=args).get_decay_parameter_names(m))
               for m in (ours, theirs)}
    for model in (ours, theirs):
        norms = {f"{n}.weight" for n, mod in model.named_modules() if isinstance(mod, torch.nn.LayerNorm)}
        biases = {n for n, _ in model.named_parameters() if n.endswith("bias")}
        assert norms and not (norms | biases) & decayed[model]
    count = {m: sum(p.numel() for n, p in m.named_parameters() if n in decayed[m]) for m in (ours, theirs)}
    assert count[ours] == count[theirs]
