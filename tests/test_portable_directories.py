"""A directory transformers cannot load exactly, it must not load at all.

Where the composition has no Hugging Face form (here a pre-LayerNorm encoder), save_pretrained writes the
weights as convbert_model.safetensors, a name transformers does not read: every transformers entry point
raises OSError instead of building the model on fresh weights, and convbert loads the directory as before.
"""

from __future__ import annotations

import pytest
import torch

import convbert

transformers = pytest.importorskip("transformers")

SIZES = dict(vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=4, intermediate_size=32)


def saved(tmp_path, norm: str):
    composition = convbert.ConvBertConfig(**SIZES).to_composition()
    composition["layer"]["norm"] = norm
    torch.manual_seed(0)
    head = {"name": "sequence_classification", "num_labels": 2}
    model = convbert.build_model({**composition, "head": head})
    model.eval().save_pretrained(tmp_path)
    return model


@pytest.mark.parametrize("loader", ["AutoModel", "AutoModelForSequenceClassification", "ConvBertModel",
                                    "ConvBertForSequenceClassification"])
def test_transformers_refuses_a_composition_it_cannot_express(tmp_path, loader):
    saved(tmp_path, "pre")
    assert (tmp_path / "convbert_model.safetensors").is_file()
    assert not (tmp_path / "model.safetensors").exists()
    with pytest.raises(OSError):
        getattr(transformers, loader).from_pretrained(tmp_path)


def test_convbert_loads_it_and_a_portable_save_replaces_the_other_name(tmp_path):
    model = saved(tmp_path, "pre")
    ids = torch.randint(5, 60, (2, 6))
    again = convbert.ConvBertForSequenceClassification.from_pretrained(tmp_path)
    torch.testing.assert_close(again(ids).logits, model(ids).logits)
    portable = saved(tmp_path, "post")  # the same directory, now a model transformers can express
    assert (tmp_path / "model.safetensors").is_file()
    assert not (tmp_path / "convbert_model.safetensors").exists()
    theirs = transformers.ConvBertForSequenceClassification.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(theirs(ids).logits, portable(ids).logits, atol=1e-5, rtol=1e-4)
