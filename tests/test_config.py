"""ConvBertConfig: Hugging Face's fields and defaults, validation, round trips, compositions."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_config_kwargs

import convbert
from convbert import ConvBertConfig
from convbert.config import HF_DEFAULTS
from convbert.errors import CheckpointError, ConfigError, NotExpressibleError


def test_defaults_match_transformers():
    transformers = pytest.importorskip("transformers")
    theirs = transformers.ConvBertConfig().to_dict()
    ours = ConvBertConfig().to_dict()
    for key in HF_DEFAULTS:
        if key in theirs:
            assert ours[key] == theirs[key], key
    assert ours["id2label"] == {str(k): v for k, v in theirs["id2label"].items()}


def test_reads_a_transformers_config_json(tmp_path):
    transformers = pytest.importorskip("transformers")
    transformers.ConvBertConfig(**tiny_config_kwargs(num_labels=5, head_ratio=4)).save_pretrained(tmp_path)
    config = ConvBertConfig.from_pretrained(tmp_path)
    assert config.num_labels == 5 and config.head_ratio == 4 and config.id2label[3] == "LABEL_3"


def test_save_load_round_trip_keeps_unknown_fields(tmp_path):
    config = ConvBertConfig(**tiny_config_kwargs(), my_note="kept", conv_mask_padding=True)
    config.save_pretrained(tmp_path)
    again = ConvBertConfig.from_pretrained(tmp_path)
    assert again == config and again.my_note == "kept" and again.conv_mask_padding
    assert ConvBertConfig.from_dict(json.loads(config.to_json_string())) == config


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("conv_kernel_size", 4, "odd"),
        ("conv_kernel_size", 0, "positive"),
        ("num_groups", 3, "divide"),
        ("head_ratio", 0, "positive"),
        ("hidden_act", "swishy", "activation"),
        ("hidden_dropout_prob", 1.5, "[0, 1)"),
        ("pad_token_id", 500, "vocab_size"),
        ("num_hidden_layers", -1, ">= 0"),
    ],
)
def test_validation_names_field_value_and_fix(field, value, fragment):
    with pytest.raises(ConfigError) as err:
        ConvBertConfig(**tiny_config_kwargs(**{field: value}))
    assert field in str(err.value) and repr(value) in str(err.value) and fragment in str(err.value)


def test_heads_that_do_not_fill_hidden_size_are_refused_by_the_model_not_the_config():
    """transformers builds ConvBertConfig(hidden_size=37, num_attention_heads=4) and refuses only the model;
    a Hub config transformers loads must load here too."""
    import transformers

    from convbert import ConvBertModel

    config = ConvBertConfig(**tiny_config_kwargs(hidden_size=30))
    assert config.hidden_size == 30 and transformers.ConvBertConfig(hidden_size=30).hidden_size == 30
    with pytest.raises(ConfigError) as err:
        ConvBertModel(config)
    assert "hidden_size=30" in str(err.value) and "divisible" in str(err.value)


def test_transformers_generic_config_api():
    config = ConvBertConfig(**tiny_config_kwargs(), attn_implementation="eager", gradient_checkpointing=True)
    assert config.get_text_config() is config and config.sub_configs == {}
    assert config._attn_implementation == "eager" and config.gradient_checkpointing
    assert "attn_implementation" not in config.to_dict() and "gradient_checkpointing" not in config.to_dict()
    assert set(config) == set(config.to_dict()) and "hidden_size" in config
    diff = config.to_diff_dict()
    assert diff["hidden_size"] == config.hidden_size and "layer_norm_eps" not in diff


def test_num_labels_and_label_maps():
    config = ConvBertConfig(num_labels=3)
    assert config.num_labels == 3 and config.label2id == {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2}
    config = ConvBertConfig(id2label={"0": "neg", "1": "pos"})
    assert config.id2label == {0: "neg", 1: "pos"} and config.num_labels == 2


def test_composition_round_trip_is_hf_compatible():
    config = ConvBertConfig(**tiny_config_kwargs(num_groups=2, head_ratio=4))
    again = ConvBertConfig.from_composition(config.to_composition("masked_lm"))
    assert again.hf_compatible
    for key in ("hidden_size", "num_attention_heads", "head_ratio", "num_groups", "conv_kernel_size",
                "embedding_size", "intermediate_size", "vocab_size"):
        assert getattr(again, key) == getattr(config, key), key


def test_head_ratio_follows_hugging_face_semantics():
    """transformers PR #21849: heads = num_heads // ratio, head size (hidden / heads) / 2."""
    model = convbert.ConvBertModel(ConvBertConfig(**tiny_config_kwargs(head_ratio=4)))
    attention, conv = model.layers[0].mixer.parts
    assert (attention.num_heads, attention.head_size) == (1, 16)
    assert (conv.num_heads, conv.head_size) == (1, 16)


def test_paper_head_ratio_semantics_are_a_composition():
    """The paper's rule: head size fixed at hidden / num_heads, each part hidden / ratio wide."""
    comp = ConvBertConfig(**tiny_config_kwargs()).to_composition()
    comp["layer"]["mixer"].update(head_ratio=4, head_size_rule="paper")
    model = convbert.build_model(comp)
    attention, _conv = model.layers[0].mixer.parts
    assert (attention.num_heads, attention.head_size) == (1, 8)
    assert model.layers[0].mixer.output_size == 16 and model.layers[0].mixer_out.in_features == 16
    assert not model.config.hf_compatible
    out = model(torch.randint(1, 97, (2, 9))).last_hidden_state
    assert out.shape == (2, 9, 32)


def test_custom_composition_refuses_hf_format_and_round_trips_in_ours(tmp_path):
    comp = ConvBertConfig(**tiny_config_kwargs()).to_composition("sequence_classification")
    comp["layer"]["mixer"] = {"name": "self_attention", "num_heads": 4}
    model = convbert.build_model(comp).eval()
    with pytest.raises(NotExpressibleError, match="Hugging Face"):
        model.save_pretrained(tmp_path / "hf", hf_format=True)
    model.save_pretrained(tmp_path / "ours")
    again = convbert.ConvBertForSequenceClassification.from_pretrained(tmp_path / "ours").eval()
    ids = torch.randint(1, 97, (2, 9))
    assert torch.equal(model(ids).logits, again(ids).logits)


def test_missing_config_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match=r"config.json"):
        ConvBertConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        ConvBertConfig.from_pretrained(tmp_path)


def test_task_checkpoint_in_our_names_loads_into_the_base_model(tmp_path):
    comp = ConvBertConfig(**tiny_config_kwargs()).to_composition("sequence_classification")
    comp["layer"]["mixer"] = {"name": "self_attention", "num_heads": 4}
    task_model = convbert.build_model(comp).eval()
    task_model.save_pretrained(tmp_path)  # our names: not expressible in Hugging Face's
    base = convbert.ConvBertModel.from_pretrained(tmp_path).eval()
    ids = torch.randint(1, 97, (2, 9))
    assert torch.equal(base(ids).last_hidden_state, task_model.convbert(ids).last_hidden_state)
    assert (tmp_path / "config.json").stat().st_mode & 0o044  # readable by others, as any saved file
