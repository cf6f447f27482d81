"""``convbert-export MODEL OUT --format onnx|torch-export``: a checkpoint directory as an ONNX file or a
``torch.export`` program (.pt2), with config.json and the tokenizer beside it.

    convbert-export checkpoints/sst2 exported/sst2 --format onnx                # exported/sst2/model.onnx
    convbert-export checkpoints/mlm exported/mlm.pt2 --format torch-export
    convbert-export checkpoints/base exported/qa --task question-answering --opset 20

The export is checked against eager PyTorch on a padded batch of another shape before the command returns.
A mistake the user can fix (no such directory, a model the format cannot express) is one line,
``convbert-export: error: ...``, and exit status 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from convbert.user_errors import user_errors_reported


def main(argv: Sequence[str] | None = None) -> None:
    """Console script ``convbert-export``."""
    from convbert.export import DEFAULT_OPSET, FORMATS, TASKS

    parser = argparse.ArgumentParser(prog="convbert-export", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a checkpoint directory (save_pretrained, convbert-train)")
    parser.add_argument("out", type=Path,
                        help="a directory (model.onnx / model.pt2 inside) or a file ending in .onnx / .pt2")
    parser.add_argument("--format", choices=FORMATS, default="onnx", help="default: onnx")
    parser.add_argument("--opset", type=int, default=None, help=f"ONNX opset (default {DEFAULT_OPSET})")
    parser.add_argument("--task", choices=list(TASKS), default=None,
                        help="the class to load MODEL as (default: config.json's architectures)")
    parser.add_argument("--no-check", action="store_true",
                        help="skip running the export against eager PyTorch on a second batch")
    args = parser.parse_args(argv)
    with user_errors_reported("convbert-export"):
        from convbert.export import export_model

        path = export_model(args.model, args.out, format=args.format, opset=args.opset, task=args.task,
                            check=not args.no_check)
    checked = "" if args.no_check else ", checked against PyTorch"
    print(f"wrote {path} (+ config.json{', tokenizer' if (path.parent / 'vocab.txt').exists() else ''}"
          f"{checked})")


if __name__ == "__main__":
    main()
