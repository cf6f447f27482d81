"""``convbert-convert``: the original release's TF1 checkpoint -> a ``save_pretrained`` directory.

    convbert-convert convbert_small/model.ckpt out/conv-bert-small --size small
    convbert-convert convbert_small/model.ckpt out/conv-bert-small-generator --size small --model generator
    convbert-convert my_run/model.ckpt out/mine --config hparams.json   # the run's pretraining hparams

The checkpoints carry no config: name the released size, or pass the pretraining hparams JSON (the
``--hparams`` given to the release's run_pretraining.py) or a ``config.json``. The discriminator is saved as
``ConvBertModel``, the generator as ``ConvBertForMaskedLM``; both load in convbert and in transformers (except
the small release's generator, whose head split transformers cannot describe: convbert's format).
Needs TensorFlow: ``pip install 'convbert[tf]'``.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from convbert.user_errors import user_errors_reported

PROG = "convbert-convert"


def main(argv: Sequence[str] | None = None) -> None:
    """Console script ``convbert-convert``; a mistake is one line ``convbert-convert: error: ...``, exit 2."""
    from convbert.conversion.tf1_checkpoint import MODELS, SIZES

    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint",
                        help="the TF1 checkpoint: its prefix (model.ckpt), one of its files or its folder")
    parser.add_argument("out", type=Path, help="the directory to write (config.json, model.safetensors)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--size", choices=SIZES, help="the released size the checkpoint is")
    source.add_argument("--config", type=Path,
                        help="the pretraining hparams JSON, or a config.json of the model")
    parser.add_argument("--model", choices=MODELS, default="discriminator",
                        help="which of the two to convert (default: discriminator)")
    args = parser.parse_args(argv)
    # TensorFlow's start-up chatter; it only reads the checkpoint here, so its oneDNN kernels are not needed
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(message)s"))
    converter_log = logging.getLogger("convbert.interop.tf1_checkpoint")
    converter_log.addHandler(handler)
    converter_log.setLevel(logging.INFO)
    converter_log.propagate = False
    try:
        with user_errors_reported(PROG):
            from convbert.conversion.tf1_checkpoint import convert_tf1_checkpoint

            net = convert_tf1_checkpoint(args.checkpoint, args.out, model=args.model,
                                         config=args.size or args.config)
    finally:
        converter_log.removeHandler(handler)
        converter_log.propagate = True
    fmt = "Hugging Face's format" if net.config.hf_compatible else \
        "convbert's format (transformers cannot load it)"
    print(f"wrote {args.out}: {type(net).__name__}, the {args.model}, {net.num_parameters():,} parameters, "
          f"in {fmt}")


if __name__ == "__main__":
    main()
