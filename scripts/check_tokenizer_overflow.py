"""Both tokenizers' overflow windows against transformers' fast ``BertTokenizer``, over a wide grid.

The figure in docs/tokenizers.md (3,324 comparisons, 191,604 rows, all equal; 54 settings where transformers
fails and ours raise ValueError) comes from this script; ``tests/test_tokenization_overflow.py`` runs a
sample of it (and provides the comparison). Run from the repository root with transformers installed (about
a minute):

    python scripts/check_tokenizer_overflow.py
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("RUST_BACKTRACE", "0")  # transformers' Rust panics print one line, not a backtrace
sys.path.insert(0, "tests")

import test_tokenization_overflow as T  # the tests' comparison and data (found through sys.path above)
import transformers
from transformers import BertTokenizer

from convbert.tokenization import ConvBertTokenizer, default_vocab_file
from convbert.tokenization_fast import ConvBertTokenizerFast

GRID = [(32, 0), (32, 8), (48, 15), (64, 0), (64, 20), (96, 31), (128, 64), (200, 50), (256, 128), (384, 128),
        (512, 256)]  # (max_length, stride)


def main() -> None:
    transformers.logging.set_verbosity_error()
    vocab_dir = tempfile.mkdtemp()
    shutil.copy(default_vocab_file(), os.path.join(vocab_dir, "vocab.txt"))
    toks = {side: (BertTokenizer.from_pretrained(vocab_dir, model_max_length=512, truncation_side=side),
                   ConvBertTokenizer(truncation_side=side), ConvBertTokenizerFast(truncation_side=side))
            for side in ("right", "left")}
    paras = [p for p in itertools.islice(T.iter_corpus("wikipedia"), 2000) if len(p) > 900][:40]
    qs = T.QUESTIONS
    counts = {"compared": 0, "rows": 0, "both_refuse": 0}
    failures: list = []
    started = time.time()

    def run(side, *args, **kw):
        try:
            reference = toks[side][0](*args, **kw)
        except BaseException:  # noqa: BLE001 - transformers fails (a Rust panic is a BaseException)
            # ours must then raise ValueError
            for tok in toks[side][1:]:
                own = dict(kw)
                if tok is toks[side][1]:
                    own.pop("return_offsets_mapping", None)  # the pure-Python tokenizer has no offsets
                try:
                    tok(*args, **own)
                    failures.append(("transformers raised, ours did not", side, kw))
                except ValueError:
                    pass
            counts["both_refuse"] += 1
            return
        try:
            counts["compared"] += T.compare(toks, side, *args, **kw)
            counts["rows"] += 2 * len(T._plain(reference["input_ids"]))
        except AssertionError as error:
            failures.append((side, kw, str(error)[:300]))

    for side in ("right", "left"):
        for (max_length, stride), padding in itertools.product(GRID, (False, True, "max_length")):
            common = dict(max_length=max_length, stride=stride, padding=padding,
                          return_overflowing_tokens=True, return_length=True, return_offsets_mapping=True,
                          return_special_tokens_mask=True)
            for i in range(0, 40, 10):
                run(side, qs[:10], paras[i:i + 10], truncation="only_second", **common)
                run(side, paras[i:i + 10], qs[:10], truncation="only_first", **common)
                run(side, qs[:10], paras[i:i + 10], truncation="longest_first", **common)
                run(side, paras[i:i + 10], truncation=True, **common)
                run(side, paras[i], truncation=True, **common)
                run(side, qs[i % 10], paras[i], truncation="only_second", **common)
            run(side, [p[:500] for p in paras[:3]], [p[:500] for p in paras[3:6]], truncation="longest_first",
                **common)
            run(side, paras[:5], add_special_tokens=False, truncation=True, **common)
    print(f"comparisons {counts['compared']}, rows {counts['rows']}, settings where transformers fails and "
          f"ours raise ValueError {counts['both_refuse']}, failures {len(failures)}, "
          f"{time.time() - started:.0f} s")
    for failure in failures[:10]:
        print(failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
