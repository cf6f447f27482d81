"""``convbert-train``: the Hydra entry point lives on the training side (``convbert.train.cli``); this module
is its place among the command-line programs."""

from __future__ import annotations


def main() -> None:
    from convbert.train.cli import main as train_main

    train_main()


if __name__ == "__main__":
    main()
