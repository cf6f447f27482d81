"""Write tests/fixtures/saved_by_<commit>/: config.json + weights saved by this commit's code, one directory
per format, so later code can prove it still loads them (tests/test_saved_formats.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

import convbert

TINY = dict(vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=4, intermediate_size=32,
            max_position_embeddings=24, embedding_size=16, pad_token_id=0)


def main(out: Path) -> None:
    torch.manual_seed(0)
    ids = torch.tensor([[2, 10, 11, 12, 3, 0], [2, 13, 14, 3, 0, 0]])
    mask = (ids != 0).long()
    models = {
        "hf_base": convbert.ConvBertModel(convbert.ConvBertConfig(**TINY, conv_kernel_size=5)),
        "hf_sequence_classification": convbert.ConvBertForSequenceClassification(convbert.ConvBertConfig(
            **TINY, conv_kernel_size=3, id2label={0: "neg", 1: "neu", 2: "pos"})),
        "hf_masked_lm": convbert.ConvBertForMaskedLM(convbert.ConvBertConfig(**TINY)),
        "hf_token_classification": convbert.ConvBertForTokenClassification(convbert.ConvBertConfig(
            **TINY, num_labels=5, classifier_dropout=0.2)),
    }
    composition = {
        "hidden_size": 16, "num_layers": 1,
        "embedding": {"name": "bert", "vocab_size": 60, "max_position_embeddings": 24, "pad_token_id": 0},
        "layer": {"name": "transformer", "norm": "pre",
                  "mixer": {"name": "mixed", "num_heads": 4, "head_ratio": 2,
                            "parts": {"attention": {"name": "self_attention"},
                                      "conv": {"name": "span_conv", "kernel_size": 7}}},
                  "ffn": {"name": "grouped", "intermediate_size": 32, "num_groups": 2}},
        "head": {"name": "sequence_classification"},  # num_labels 4 did not survive a save here
    }
    models["composition_sequence_classification"] = convbert.build_model(composition)
    for name, model in models.items():
        model.eval()
        model.save_pretrained(out / name)
        with torch.no_grad():
            result = model(input_ids=ids, attention_mask=mask)
        first = result.last_hidden_state if name == "hf_base" else result.logits
        torch.save({"input_ids": ids, "attention_mask": mask, "output": first}, out / name / "expected.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
