"""``convbert-prepare``: tokenize a run's pretraining corpus ahead of time, as ``convbert-train`` would.

    convbert-prepare experiment=pretrain_small data.path='corpus/*.txt.gz' --workers 16
    convbert-prepare data.path=my.txt data.cache_dir=/shared/tokens --verify

It takes convbert-train's overrides, so the store it writes is exactly the one the same ``convbert-train``
command finds (same inputs, tokenizer and cache directory: the same fingerprint). On a cluster, run it once on
a machine that sees the shared cache directory, then launch training on every node.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from convbert.user_errors import user_errors_reported

PROG = "convbert-prepare"


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Tokenize a run's pretraining corpus into its memory-mapped token store.",
        epilog="Other arguments are convbert-train overrides (model=..., tokenizer=..., data.path=..., "
               "data.cache_dir=...), e.g. convbert-prepare data.path='shards/*.txt.gz' --workers 8")
    parser.add_argument("--workers", type=int, default=None,
                        help="tokenizing processes (default: data.prepare_workers, else every CPU)")
    parser.add_argument("--verify", action="store_true",
                        help="check every file of the store against its SHA-256 checksum")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args, overrides = parser.parse_known_args(argv)
    bad = [o for o in overrides if o.startswith("-")]
    if bad:
        parser.error(f"unrecognized arguments: {' '.join(bad)}")
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be >= 1")
    return args, overrides


def main(argv: list[str] | None = None) -> None:
    """Console script ``convbert-prepare``."""
    args, overrides = parse(sys.argv[1:] if argv is None else argv)
    with user_errors_reported(PROG):
        prepare_run(overrides, workers=args.workers, verify=args.verify, progress=not args.no_progress)


def prepare_run(overrides: list[str], workers: int | None = None, verify: bool = False,
                progress: bool = True) -> list[Path]:
    """The token stores of every corpus stage of ``convbert-train <overrides>``; returns their directories."""
    from dataclasses import replace

    from convbert.data.token_store import CorpusSpec, ensure_store
    from convbert.errors import ConfigError
    from convbert.train.cli import compose_config
    from convbert.train.job import _vocabulary_corpus, plan_run
    from convbert.train.model_config import vocab_size
    from convbert.train.vocabulary import resolve_tokenizer

    plan = plan_run(compose_config(overrides))
    corpora = [stage.data for stage in plan.stages if stage.data.name == "corpus"]
    if not corpora:
        raise ConfigError("this configuration has no pretraining stage: nothing to prepare (add "
                          "pretrain=rtd, task=pretrain_rtd or experiment=pretrain_small)")

    def say(line: str) -> None:
        print(line, flush=True)

    corpus = _vocabulary_corpus(plan.stages)
    if workers:
        corpus = replace(corpus, prepare_workers=workers)
    tokenizer, described = resolve_tokenizer(plan.run.tokenizer, plan.init, vocab_size(plan.composition),
                                             corpus, Path("/nonexistent"), progress=progress)
    directories = []
    for data in corpora:
        spec = CorpusSpec.from_data(data)
        store = ensure_store(spec, tokenizer, data.cache_dir, workers=workers or data.prepare_workers,
                             progress=progress, say=say)
        if verify:
            store.verify()
        tokens = sum(split["tokens"] for split in store.meta["splits"].values())
        print(f"{'verified' if verify else 'ready'}: {store.directory} ({tokens:,} tokens, "
              f"{store.meta['dtype']}); tokenizer: {described}", flush=True)
        directories.append(store.directory)
    return directories


if __name__ == "__main__":
    main()
