"""Bad input gets an error that names the problem and the fix, never an IndexError from inside torch."""

from __future__ import annotations

import pickle

import pytest
import torch
from conftest import tiny_config_kwargs

import convbert
from convbert.errors import CheckpointError, InputError


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return convbert.ConvBertForSequenceClassification(convbert.ConvBertConfig(**tiny_config_kwargs())).eval()


def test_sequence_longer_than_position_table(model):
    with pytest.raises(InputError, match=r"sequence length 41 .*40 positions.*truncat"):
        model(torch.ones(1, 41, dtype=torch.long))


def test_token_id_outside_vocabulary(model):
    with pytest.raises(InputError, match=r"input_ids contains 97, outside \[0, 96\]"):
        model(torch.tensor([[1, 2, 97]]))
    with pytest.raises(InputError, match="-1"):
        model(torch.tensor([[1, -1, 3]]))


def test_token_type_outside_table(model):
    with pytest.raises(InputError, match="token_type_ids contains 2"):
        model(torch.tensor([[1, 2, 3]]), token_type_ids=torch.tensor([[0, 1, 2]]))


def test_attention_mask_of_the_wrong_shape(model):
    with pytest.raises(InputError, match=r"attention_mask has shape \(1, 4\).*\(1, 3\)"):
        model(torch.tensor([[1, 2, 3]]), attention_mask=torch.ones(1, 4))


def test_inputs_missing_or_both_or_wrong_rank(model):
    with pytest.raises(InputError, match="exactly one"):
        model()
    with pytest.raises(InputError, match="batch, length"):
        model(torch.tensor([1, 2, 3]))
    with pytest.raises(InputError, match="integer"):
        model(torch.ones(1, 3))


def test_missing_checkpoint_directory(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        convbert.ConvBertModel.from_pretrained(tmp_path / "nowhere")


def test_truncated_weights_file_is_named(model, tmp_path):
    model.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"model.safetensors.*truncated or corrupt"):
        convbert.ConvBertForSequenceClassification.from_pretrained(tmp_path)


def test_keys_that_do_not_match_are_listed(model, tmp_path):
    from safetensors.torch import load_file, save_file

    model.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    del state["convbert.encoder.layer.1.output.dense.weight"]
    state["convbert.encoder.layer.1.surprise.weight"] = torch.zeros(1)
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError) as err:
        convbert.ConvBertForSequenceClassification.from_pretrained(tmp_path)
    assert "layers.1.ffn.down.weight" in str(err.value) and "surprise" in str(err.value)


def test_shape_mismatch_is_named(model, tmp_path):
    model.save_pretrained(tmp_path)
    config = convbert.ConvBertConfig.from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="wrong shape"):
        convbert.ConvBertForSequenceClassification.from_pretrained(
            tmp_path, config=convbert.ConvBertConfig(**{**config.to_dict(), "intermediate_size": 64})
        )


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch EXPLOITED_BY_PICKLE",))


def test_pickle_that_would_run_code_is_refused(model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model.config.save_pretrained(tmp_path)
    with open(tmp_path / "pytorch_model.bin", "wb") as fh:
        pickle.dump({"weight": _Exploit()}, fh)
    with pytest.raises(CheckpointError, match="refused"):
        convbert.ConvBertForSequenceClassification.from_pretrained(tmp_path)
    assert not (tmp_path / "EXPLOITED_BY_PICKLE").exists()


def test_weights_only_pickle_loads(model, tmp_path):
    """A plain tensor state dict (old transformers' pytorch_model.bin) is still accepted."""
    transformers = pytest.importorskip("transformers")
    model.save_pretrained(tmp_path)
    hf = transformers.ConvBertForSequenceClassification.from_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save(hf.state_dict(), tmp_path / "pytorch_model.bin")
    again = convbert.ConvBertForSequenceClassification.from_pretrained(tmp_path).eval()
    ids = torch.tensor([[1, 2, 3, 4]])
    assert torch.allclose(again(ids).logits, model(ids).logits, atol=1e-6)


def test_old_checkpoints_with_constant_buffers_load(model, tmp_path):
    from safetensors.torch import load_file, save_file

    model.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    state["convbert.embeddings.position_ids"] = torch.arange(40)[None]
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    again = convbert.ConvBertForSequenceClassification.from_pretrained(tmp_path)
    ids = torch.tensor([[1, 2, 3, 4]])
    assert torch.equal(again.eval()(ids).logits, model.eval()(ids).logits)
