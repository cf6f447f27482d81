"""The dev MLM loss of a model that ignores context: each token's frequency in the training split.

The README's ablation section compares the sweeps' dev MLM loss with this level (7.06 for the protocol's data:
the shipped corpus, 64-token sequences, 10% of the paragraphs held out). Add-one smoothing; [CLS]/[SEP] left
out, as the masking never selects them.

    python scripts/mlm_unigram_baseline.py [overrides, e.g. experiment=kernel_size]
"""

from __future__ import annotations

import collections
import math
import sys
import tempfile
from pathlib import Path

from convbert.train import schema
from convbert.train.cli import compose_config
from convbert.train.job import _vocabulary_corpus
from convbert.train.mlm import load_paragraphs, pack
from convbert.train.model_config import model_composition, vocab_size
from convbert.train.vocabulary import resolve_tokenizer


def main(overrides: list[str]) -> None:
    cfg = compose_config(overrides or ["experiment=kernel_size"])
    run_cfg, stages = schema.check_run(cfg)
    data = stages[-1].data
    with tempfile.TemporaryDirectory() as tmp:  # the tokenizer a run with these overrides would use
        tokenizer, _ = resolve_tokenizer(run_cfg.tokenizer, run_cfg.init_from,
                                         vocab_size(model_composition(cfg.model)), _vocabulary_corpus(stages),
                                         Path(tmp) / "tokenizer")
    train_text, dev_text = load_paragraphs(data)
    train = pack(train_text, tokenizer, data.max_length, data.max_examples)
    dev = pack(dev_text, tokenizer, data.max_length, data.max_dev_examples)
    special = {tokenizer.cls_token_id, tokenizer.sep_token_id}
    counts = collections.Counter(t for s in train for t in s["input_ids"] if t not in special)
    total, vocab = sum(counts.values()), len(tokenizer)
    tokens = [t for s in dev for t in s["input_ids"] if t not in special]
    loss = sum(-math.log((counts[t] + 1) / (total + vocab)) for t in tokens) / len(tokens)
    print(f"{len(train)} train / {len(dev)} dev sequences, {len(tokens)} dev tokens: unigram loss {loss:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
