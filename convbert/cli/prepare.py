"""``convbert-prepare``: the corpus preparation program of the training side (``convbert.train.prepare_cli``,
issue 25); this module is its place among the command-line programs."""

from __future__ import annotations


def main() -> None:
    from convbert.train.prepare_cli import main as prepare_main  # issue 25's module

    prepare_main()


if __name__ == "__main__":
    main()
