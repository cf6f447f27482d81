"""Tokenization throughput: ours against Hugging Face's BERT tokenizers on the same real sentences.

Encodes N sentences (Rotten Tomatoes, shipped in convbert/data/sentiment; Python's own documentation text as a
fallback) with [CLS]/[SEP], token types and attention masks, and prints sentences per second as a markdown
table: ConvBertTokenizer vs transformers' BertTokenizerLegacy (pure Python), ConvBertTokenizerFast vs
transformers' BertTokenizer one sentence per call, and both fast ones on batches.  Each timing is the best of
--repeats runs, after checking that both sides produce the same ids.

    python bench/bench_tokenizers.py [--sentences 10000] [--batch-size 256] [--repeats 5]
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

from convbert.tokenization import ConvBertTokenizer, default_vocab_file
from convbert.tokenization_fast import ConvBertTokenizerFast

SENTIMENT_DIR = Path(__file__).resolve().parents[1] / "convbert" / "data" / "sentiment"


def load_sentences(n: int) -> list[str]:
    """Real sentences: the shipped sentiment TSV (id, rating, text) if present, else the stdlib's docs."""
    sentences = []
    for path in sorted(SENTIMENT_DIR.glob("*.tsv")):
        for line in path.read_text(encoding="utf-8").splitlines():
            text = line.split("\t")[-1].strip()
            if text and text.lower() != "text":
                sentences.append(text)
    if len(sentences) < n:
        from pydoc_data.topics import topics

        for doc in topics.values():
            sentences += [s.strip() for s in re.split(r"(?<=[.!?])\s+", doc) if len(s.strip()) > 20]
    return (sentences * (n // max(len(sentences), 1) + 1))[:n]


def best_rates(runs: tuple[Callable[[], object], ...], n: int, repeats: int) -> list[float]:
    """Sentences/s of each run, best of ``repeats``; runs alternate, so background load hits all alike."""
    best = [float("inf")] * len(runs)
    for _ in range(repeats):
        for i, run in enumerate(runs):
            start = time.perf_counter()
            run()
            best[i] = min(best[i], time.perf_counter() - start)
    return [n / seconds for seconds in best]


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--sentences", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import transformers
    from transformers import BertTokenizer
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    transformers.logging.set_verbosity_error()
    warnings.simplefilter("ignore")
    sentences = load_sentences(args.sentences)
    batches = [sentences[i : i + args.batch_size] for i in range(0, len(sentences), args.batch_size)]
    with tempfile.TemporaryDirectory() as directory:
        shutil.copy(default_vocab_file(), directory)
        hf_slow = BertTokenizerLegacy(str(Path(directory) / "vocab.txt"), model_max_length=512)
        hf_fast = BertTokenizer.from_pretrained(directory, model_max_length=512)
    slow, fast = ConvBertTokenizer(), ConvBertTokenizerFast()
    # The legacy tokenizer omits token type ids unless asked; ask, so both sides do the same work.
    hf_slow_call = partial(hf_slow, return_token_type_ids=True)

    for ours, theirs in ((slow, hf_slow_call), (fast, hf_fast)):
        sample = sentences[:500]
        ids = [ours(s)["input_ids"] for s in sample]
        assert ids == [theirs(s)["input_ids"] for s in sample], "ids differ from HF"

    def one_by_one(tokenizer: Callable) -> Callable[[], object]:
        return lambda: [tokenizer(s) for s in sentences]

    def batched(tokenizer: Callable) -> Callable[[], object]:
        return lambda: [tokenizer(b, padding=True) for b in batches]

    rows = [
        ("pure Python, one by one", one_by_one(slow), one_by_one(hf_slow_call)),
        ("fast, one by one", one_by_one(fast), one_by_one(hf_fast)),
        (f"fast, batches of {args.batch_size}", batched(fast), batched(hf_fast)),
    ]
    n = len(sentences)
    print(f"{n} sentences, best of {args.repeats}; transformers {transformers.__version__}\n")
    print("| tokenizer | ours (sentences/s) | Hugging Face (sentences/s) | ours / HF |")
    print("|---|---:|---:|---:|")
    for name, ours_run, theirs_run in rows:
        ours_rate, theirs_rate = best_rates((ours_run, theirs_run), n, args.repeats)
        print(f"| {name} | {ours_rate:,.0f} | {theirs_rate:,.0f} | {ours_rate / theirs_rate:.2f} |")


if __name__ == "__main__":
    main()
