"""The dev MLM loss of a model that ignores context: each token's frequency in the training split.

The ablation tables (docs/ablations.md) compare the sweeps' dev MLM loss with this level (7.06 for the
protocol's data: the shipped corpus, 64-token sequences, 10% of the paragraphs held out). Add-one smoothing;
[CLS]/[SEP] left out, as the masking never selects them.

    python scripts/mlm_unigram_baseline.py [overrides, e.g. experiment=kernel_size]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from convbert.train import schema
from convbert.train.cli import compose_config
from convbert.train.job import _vocabulary_corpus
from convbert.train.model_config import model_composition, vocab_size
from convbert.train.tasks import make_task
from convbert.train.vocabulary import resolve_tokenizer


def main(overrides: list[str]) -> None:
    cfg = compose_config(overrides or ["experiment=kernel_size"])
    run_cfg, stages = schema.check_run(cfg)
    with tempfile.TemporaryDirectory() as tmp:  # the tokenizer a run with these overrides would use
        tokenizer, _ = resolve_tokenizer(run_cfg.tokenizer, run_cfg.init_from,
                                         vocab_size(model_composition(cfg.model)), _vocabulary_corpus(stages),
                                         Path(tmp) / "tokenizer")
    stage = stages[-1]
    task = make_task(stage.task, tokenizer)
    train, dev = task.features(stage.data)
    loss = task.baseline(train, dev)["unigram_loss"]  # what every MLM / RTD stage prints as its baseline
    print(f"{len(train)} train / {len(dev)} dev sequences: unigram loss {loss:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
