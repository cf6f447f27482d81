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
