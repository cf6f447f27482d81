"""config.json files and weights saved by earlier code still load, and give the outputs they gave then.

``tests/fixtures/saved_by_<commit>/`` holds one directory per format, written by that commit's code with
``scripts/write_format_fixtures.py`` (its outputs on fixed inputs in ``expected.pt``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import convbert

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CLASSES = {
    "hf_base": convbert.ConvBertModel,
    "hf_sequence_classification": convbert.ConvBertForSequenceClassification,
    "hf_masked_lm": convbert.ConvBertForMaskedLM,
    "hf_token_classification": convbert.ConvBertForTokenClassification,
    "composition_sequence_classification": convbert.ConvBertForSequenceClassification,
}
SAVED = sorted(p for p in FIXTURES.glob("saved_by_*/*") if p.is_dir())


def test_there_are_fixtures_of_every_format() -> None:
    assert {p.name for p in SAVED} >= set(CLASSES)


@pytest.mark.parametrize("directory", SAVED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_saved_directory_loads_and_gives_the_same_outputs(directory: Path) -> None:
    model = CLASSES[directory.name].from_pretrained(directory)
    expected = torch.load(directory / "expected.pt")
    with torch.no_grad():
        out = model(input_ids=expected["input_ids"], attention_mask=expected["attention_mask"])
    got = out.last_hidden_state if directory.name == "hf_base" else out.logits
    torch.testing.assert_close(got, expected["output"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("directory", SAVED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_saved_directory_saves_again_and_reloads(directory: Path, tmp_path: Path) -> None:
    model = CLASSES[directory.name].from_pretrained(directory)
    model.save_pretrained(tmp_path)
    again = CLASSES[directory.name].from_pretrained(tmp_path)
    for (k, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    assert again.config.to_dict() == model.config.to_dict()


def test_a_composition_head_survives_a_save(tmp_path: Path) -> None:
    """The head node of a composition is described by the config (before issue 26 a sequence_classification
    head with num_labels=4 was saved with config.json's default 2 labels, and did not reload)."""
    composition = convbert.ConvBertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=1,
                                          num_attention_heads=4, intermediate_size=32).to_composition()
    composition["layer"]["norm"] = "pre"  # an encoder transformers cannot describe
    for head in ({"name": "sequence_classification", "num_labels": 4},
                 {"name": "sequence_classification", "num_labels": 3, "activation": "relu"},
                 {"name": "token_classification", "num_labels": 7, "dropout": 0.3}):
        model = convbert.build_model({**composition, "head": head}).eval()
        model.save_pretrained(tmp_path / head["name"])
        again = type(model).from_pretrained(tmp_path / head["name"])
        assert again.config.num_labels == head["num_labels"]
        assert again.head.num_labels == head["num_labels"]
        ids = torch.tensor([[2, 5, 6, 7]])
        torch.testing.assert_close(again(input_ids=ids).logits, model(input_ids=ids).logits)


@pytest.mark.parametrize("directory", [p for p in SAVED if p.name != "hf_base"], ids=lambda p: p.name)
def test_the_generic_loader_builds_the_class_a_directory_was_saved_with(directory: Path) -> None:
    model = convbert.ConvBertWithHead.from_pretrained(directory)
    assert type(model) is CLASSES[directory.name]


def test_the_generic_loader_refuses_a_directory_without_a_head() -> None:
    (base,) = [p for p in SAVED if p.name == "hf_base"]
    with pytest.raises(convbert.InputError, match="names no head"):
        convbert.ConvBertWithHead.from_pretrained(base)
