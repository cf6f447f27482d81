"""from_pretrained's contract as transformers keeps it: output_loading_info, state_dict=, and the hooks PEFT
uses with gradient checkpointing (enable_input_require_grads)."""

from __future__ import annotations

import torch

from convbert import ConvBertConfig, ConvBertForSequenceClassification, ConvBertModel

SIZES = dict(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
             embedding_size=16, max_position_embeddings=32)


def test_output_loading_info_reports_the_new_head(tmp_path):
    torch.manual_seed(0)
    ConvBertModel(ConvBertConfig(**SIZES)).save_pretrained(tmp_path)
    model, info = ConvBertForSequenceClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert isinstance(model, ConvBertForSequenceClassification)
    assert info["missing_keys"] and all(k.startswith(("head.", "classifier")) for k in info["missing_keys"])
    assert info["unexpected_keys"] == set() and info["mismatched_keys"] == set() and info["error_msgs"] == []
    _, info = ConvBertModel.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == set()


def test_state_dict_instead_of_files(tmp_path):
    torch.manual_seed(1)
    source = ConvBertForSequenceClassification(ConvBertConfig(**SIZES)).eval()
    loaded = ConvBertForSequenceClassification.from_pretrained(None, config=source.config,
                                                               state_dict=source.state_dict())
    ids = torch.tensor([[2, 5, 7, 3]])
    torch.testing.assert_close(loaded(ids).logits, source(ids).logits)


def test_input_require_grads_lets_checkpointing_train_with_frozen_embeddings():
    torch.manual_seed(2)
    model = ConvBertForSequenceClassification(ConvBertConfig(**SIZES)).train()
    model.get_input_embeddings().weight.requires_grad_(False)
    model.gradient_checkpointing_enable()
    model.enable_input_require_grads()
    out = model(torch.tensor([[2, 5, 7, 3]]), labels=torch.tensor([1]))
    out.loss.backward()
    layer = next(p for n, p in model.named_parameters() if ".layers.0." in n and p.dim() == 2)
    assert layer.grad is not None and layer.grad.abs().sum() > 0
    model.disable_input_require_grads()
    assert model._require_grads_hook is None


def test_post_init_initialises_only_what_was_added_after_init():
    """transformers' subclass pattern (add modules, then post_init()) must not redraw the other weights."""
    import torch

    from convbert import ConvBertConfig, ConvBertForMaskedLM

    model = ConvBertForMaskedLM(ConvBertConfig(**SIZES, tie_word_embeddings=False))
    model.resize_token_embeddings(model.config.vocab_size + 10)
    before = {k: v.clone() for k, v in model.own_state_dict().items()}
    model.extra = torch.nn.Linear(4, 4)
    torch.nn.init.constant_(model.extra.weight, 5.0)
    model.post_init()
    assert all(torch.equal(before[k], v) for k, v in model.own_state_dict().items() if k in before)
    assert model.extra.weight.abs().max() < 1.0 and torch.all(model.extra.bias == 0)
