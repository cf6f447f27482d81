"""``convbert-report``: a sweep directory -> a table and a plot (``convbert.train.report``)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> None:
    from convbert.train.report import main as report_main

    report_main(argv)


if __name__ == "__main__":
    main()
