"""``python -m convbert.train``: the same entry point as ``convbert-train`` (and what torchrun runs)."""

from convbert.train.cli import main

if __name__ == "__main__":
    main()
