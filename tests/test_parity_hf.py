"""Same weights, same inputs -> the same numbers as Hugging Face's ConvBERT, checkpoints both ways."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config_kwargs, to_device

import convbert

transformers = pytest.importorskip("transformers")

CLASSES = [
    "ConvBertModel", "ConvBertForMaskedLM", "ConvBertForSequenceClassification",
    "ConvBertForTokenClassification", "ConvBertForQuestionAnswering", "ConvBertForMultipleChoice",
]
CONFIGS = {
    "ratio1-k3-emb16": dict(head_ratio=1, conv_kernel_size=3, num_groups=1),
    "ratio2-k5-groups2-emb32": dict(head_ratio=2, conv_kernel_size=5, num_groups=2, embedding_size=32),
    "ratio3-k9-groups4-heads6": dict(head_ratio=3, conv_kernel_size=9, num_groups=4, hidden_size=48,
                                     num_attention_heads=6, intermediate_size=64, hidden_act="gelu_new"),
    "ratio4-k9-relu-3labels": dict(head_ratio=4, conv_kernel_size=9, hidden_act="relu", num_labels=3),
}
TOL = 1e-5


def _inputs(name: str, batch, num_labels: int):
    ids, mask, types = batch
    g = torch.Generator().manual_seed(2)
    args = dict(input_ids=ids, attention_mask=mask, token_type_ids=types,
                output_hidden_states=True, output_attentions=True)
    if name == "ConvBertForMultipleChoice":
        args = {k: v.unsqueeze(1).expand(-1, 2, -1).contiguous() if torch.is_tensor(v) else v
                for k, v in args.items()}
        args["input_ids"] = args["input_ids"].clone()
        args["input_ids"][:, 1, 1] = 7  # the two choices differ
        args["labels"] = torch.tensor([1, 0, 1])
    elif name == "ConvBertForMaskedLM":
        args["labels"] = torch.where(torch.rand(ids.shape, generator=g) < 0.3, ids, -100)
        args["labels"][0, 0] = ids[0, 0]
    elif name == "ConvBertForSequenceClassification":
        args["labels"] = torch.randint(0, num_labels, (3,), generator=g)
    elif name == "ConvBertForTokenClassification":
        args["labels"] = torch.randint(0, num_labels, ids.shape, generator=g).masked_fill(mask == 0, -100)
    elif name == "ConvBertForQuestionAnswering":
        args["start_positions"] = torch.tensor([1, 3, 40])  # 40: outside the input, ignored as in HF
        args["end_positions"] = torch.tensor([2, 6, 4])
    return args


def _randomize(model: torch.nn.Module, seed: int) -> None:
    """Random values everywhere (LayerNorms and biases too) so that no mis-mapped tensor hides."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)


def _compare(ref, ours) -> float:
    assert list(ref.keys()) == list(ours.keys())
    worst = 0.0
    for key in ref:
        a, b = ref[key], ours[key]
        if isinstance(a, tuple):
            assert len(a) == len(b), key
            worst = max([worst] + [(x - y).abs().max().item() for x, y in zip(a, b, strict=False)])
        else:
            assert a.shape == b.shape, key
            worst = max(worst, (a - b).abs().max().item())
    return worst


def _config_kwargs(config_id: str, name: str):
    kwargs = tiny_config_kwargs(**CONFIGS[config_id])
    if name == "ConvBertForQuestionAnswering":
        kwargs["num_labels"] = 2
    return kwargs


@pytest.mark.parametrize("config_id", list(CONFIGS))
@pytest.mark.parametrize("name", CLASSES)
def test_hf_checkpoint_loads_with_same_outputs(name, config_id, batch, tmp_path, device):
    kwargs = _config_kwargs(config_id, name)
    torch.manual_seed(0)
    hf = getattr(transformers, name)(transformers.ConvBertConfig(**kwargs)).eval()
    _randomize(hf, seed=3)
    if hasattr(hf, "tie_weights"):
        hf.tie_weights()
    hf.save_pretrained(tmp_path)
    ours = getattr(convbert, name).from_pretrained(tmp_path).eval().to(device)
    hf = hf.to(device)
    args = to_device(_inputs(name, batch, kwargs.get("num_labels", 2)), device)
    with torch.no_grad():
        ref, out = hf(**args), ours(**args)
    assert _compare(ref, out) <= TOL
    with torch.no_grad():  # tuple access, as return_dict=False
        ref_t, out_t = hf(**args, return_dict=False), ours(**args, return_dict=False)
    assert len(ref_t) == len(out_t)
    assert torch.allclose(ref_t[0], out_t[0], atol=TOL)


@pytest.mark.parametrize("config_id", list(CONFIGS))
@pytest.mark.parametrize("name", CLASSES)
def test_our_checkpoint_loads_in_transformers(name, config_id, batch, tmp_path, device):
    kwargs = _config_kwargs(config_id, name)
    torch.manual_seed(0)
    ours = getattr(convbert, name)(convbert.ConvBertConfig(**kwargs)).eval()
    _randomize(ours, seed=4)
    ours.save_pretrained(tmp_path)
    hf = getattr(transformers, name).from_pretrained(tmp_path).eval().to(device)
    hf_keys = set(hf.state_dict())
    ours_again = getattr(convbert, name).from_pretrained(tmp_path).eval().to(device)
    ours = ours.to(device)
    assert set(hf.state_dict()) == hf_keys
    args = to_device(_inputs(name, batch, kwargs.get("num_labels", 2)), device)
    with torch.no_grad():
        assert _compare(hf(**args), ours(**args)) <= TOL
        assert _compare(ours_again(**args), ours(**args)) == 0.0


def test_training_mode_losses_and_gradients_match(batch, tmp_path, device):
    """Dropout off, train mode: same loss and same gradients for every parameter."""
    kwargs = tiny_config_kwargs(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    hf = transformers.ConvBertForMaskedLM(transformers.ConvBertConfig(**kwargs))
    _randomize(hf, seed=5)
    hf.tie_weights()
    hf.save_pretrained(tmp_path)
    ours = convbert.ConvBertForMaskedLM.from_pretrained(tmp_path).to(device)
    hf = hf.to(device)
    args = to_device(_inputs("ConvBertForMaskedLM", batch, 2), device)
    hf(**args).loss.backward()
    ours(**args).loss.backward()
    from convbert.interop import hf_keys

    ours_grads, _ = hf_keys.to_hf({n: p.grad for n, p in ours.named_parameters()}, "masked_lm")
    for name, p in hf.named_parameters():
        assert torch.allclose(p.grad, ours_grads[name], atol=1e-5), name


def test_sparse_masked_lm_logits_give_the_same_loss(batch):
    torch.manual_seed(0)
    model = convbert.ConvBertForMaskedLM(convbert.ConvBertConfig(**tiny_config_kwargs())).eval()
    args = _inputs("ConvBertForMaskedLM", batch, 2)
    full = model(**args)
    sparse = model(**args, logits_at_labels_only=True)
    labelled = args["labels"] != -100
    assert sparse.logits.shape == (int(labelled.sum()), 97)
    assert torch.allclose(full.loss, sparse.loss, atol=1e-6)
    assert torch.allclose(full.logits[labelled], sparse.logits, atol=1e-5)


def test_gradient_checkpointing_gives_the_same_gradients(batch):
    torch.manual_seed(0)
    config = convbert.ConvBertConfig(
        **tiny_config_kwargs(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    )
    model = convbert.ConvBertForMaskedLM(config)
    args = _inputs("ConvBertForMaskedLM", batch, 2)
    model(**args).loss.backward()
    plain = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model.gradient_checkpointing_enable()
    model(**args).loss.backward()
    for n, p in model.named_parameters():
        assert torch.allclose(p.grad, plain[n], atol=1e-6), n


def test_resize_token_embeddings_keeps_rows_and_tying():
    torch.manual_seed(0)
    model = convbert.ConvBertForMaskedLM(convbert.ConvBertConfig(**tiny_config_kwargs())).eval()
    ids = torch.randint(1, 97, (2, 6))
    before = model(ids).logits
    model.resize_token_embeddings(120)
    after = model(ids).logits
    assert after.shape[-1] == 120 and model.config.vocab_size == 120
    assert torch.allclose(before, after[..., :97], atol=1e-6)
    assert model.head.decoder.weight is model.convbert.embeddings.word.weight
    model(torch.tensor([[119]]), labels=torch.tensor([[119]]))  # the new ids are valid now
