"""How much an encoder's [CLS] state (what sequence classification reads) varies across sentences.

For each model directory: the mean distance of the [CLS] output from its mean over 64 shipped dev sentences,
divided by its mean norm, and the same for the token states. A value near 0 means every sentence gets nearly
the same [CLS] vector, which fine-tuning must first undo (docs/training.md, "How the recipe was chosen").

    python scripts/cls_spread.py outputs/<run>/pretrain/model [more model dirs] [--random]
"""

from __future__ import annotations

import argparse

import torch

from convbert import ConvBertModel, ConvBertTokenizerFast
from convbert.data import load_sentiment


def spread(states: torch.Tensor) -> float:
    """(N, H) -> mean distance from the mean, relative to the mean norm."""
    return float((states - states.mean(0)).norm(dim=-1).mean() / states.norm(dim=-1).mean())


def measure(model: ConvBertModel, tokenizer: ConvBertTokenizerFast) -> tuple[float, float]:
    texts = [record["text"] for record in load_sentiment("dev")[:64]]
    batch = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        hidden = model.eval()(**batch).last_hidden_state
    real = batch["attention_mask"][:, 1:].bool()
    return spread(hidden[:, 0]), spread(hidden[:, 1:][real])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="directories written by save_pretrained")
    parser.add_argument("--random", action="store_true", help="also the first model, untrained")
    args = parser.parse_args()
    for directory in args.models:
        tokenizer = ConvBertTokenizerFast.from_pretrained(directory)
        model = ConvBertModel.from_pretrained(directory)
        cls, tokens = measure(model, tokenizer)
        print(f"{directory}: [CLS] {cls:.3f}, tokens {tokens:.3f}")
    if args.random:
        torch.manual_seed(0)
        model = ConvBertModel.from_pretrained(args.models[0])
        model.init_weights()
        cls, tokens = measure(model, ConvBertTokenizerFast.from_pretrained(args.models[0]))
        print(f"untrained (seed 0): [CLS] {cls:.3f}, tokens {tokens:.3f}")


if __name__ == "__main__":
    main()
