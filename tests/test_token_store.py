"""The memory-mapped token store: every input format, one store whatever the workers, O(1) reopening, nothing
half-made used, clear errors; and the packed two-segment windows read from it."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import multiprocessing
import os

import numpy as np
import pytest

from convbert.data import token_store
from convbert.data.packed_windows import PackedWindows
from convbert.data.token_store import CorpusSpec, TokenStore, ensure_store, fingerprint, is_dev, prepare
from convbert.errors import ConfigError, DataError
from convbert.tokenization_fast import ConvBertTokenizerFast

PARAGRAPHS = [f"paragraph {i} says the number {i * 7} is {'odd' if i % 2 else 'even'} today."
              for i in range(300)]


@pytest.fixture(scope="module")
def tokenizer():
    return ConvBertTokenizerFast()


def spec_of(*paths, **kwargs) -> CorpusSpec:
    return CorpusSpec(tuple(str(p) for p in paths), **kwargs)


def expected(tokenizer, paragraphs, split):
    """What the store must hold for a split: each paragraph's ids, back to back, in order."""
    chosen = [p for p in paragraphs if is_dev(p, 0.02) == (split == "dev")]
    rows = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in chosen]
    return [i for r in rows for i in r], np.cumsum([0, *map(len, rows)]).tolist()


def check_store(store: TokenStore, tokenizer, paragraphs):
    for split in ("train", "dev"):
        ids, offsets = expected(tokenizer, paragraphs, split)
        assert store.tokens(split).tolist() == ids
        assert store.offsets(split).tolist() == offsets
    assert store.dtype == np.uint16, "a 30,522-piece vocabulary fits 2 bytes a token"
    counts = np.bincount(store.tokens("train"), minlength=len(tokenizer))
    assert store.unigram_counts().tolist() == counts.tolist()


@pytest.mark.parametrize("form", ["txt", "gz", "bz2", "xz", "jsonl", "jsonl.gz", "parquet", "datasets"])
def test_every_input_format_gives_the_tokenizers_ids(tmp_path, tokenizer, form):
    text = "\n".join(PARAGRAPHS) + "\n"
    lines = "".join(json.dumps({"id": i, "body": p}) + "\n" for i, p in enumerate(PARAGRAPHS))
    field = "text"
    if form in ("txt", "gz", "bz2", "xz"):
        path = tmp_path / (f"c.txt.{form}" if form != "txt" else "c.txt")
        opener = {"gz": gzip.open, "bz2": bz2.open, "xz": lzma.open}.get(form, open)
        with opener(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    elif form.startswith("jsonl"):
        path, field = tmp_path / f"c.{form}", "body"
        with (gzip.open if form.endswith("gz") else open)(path, "wt", encoding="utf-8") as handle:
            handle.write(lines)
    else:
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq

        table = pa.table({"text": PARAGRAPHS, "n": list(range(len(PARAGRAPHS)))})
        if form == "parquet":
            path = tmp_path / "c.parquet"
            pq.write_table(table, path, row_group_size=64)
        else:  # the layout Dataset.save_to_disk writes: Arrow IPC streams listed in state.json
            path = tmp_path / "ds"
            path.mkdir()
            for n, part in enumerate((table.slice(0, 100), table.slice(100))):
                with pa.OSFile(str(path / f"data-0000{n}-of-00002.arrow"), "wb") as sink, \
                        pa.ipc.new_stream(sink, table.schema) as writer:
                    writer.write_table(part)
            state = {"_data_files": [{"filename": f"data-0000{n}-of-00002.arrow"} for n in range(2)]}
            (path / "state.json").write_text(json.dumps(state))
            (path / "dataset_info.json").write_text("{}")
    store = ensure_store(spec_of(path, text_field=field), tokenizer, tmp_path / "cache", workers=1,
                         progress=False)
    check_store(store, tokenizer, PARAGRAPHS)


def test_globs_directories_and_lists_read_the_same_files_in_order(tmp_path, tokenizer):
    from convbert.data.readers import expand_corpus_paths

    (tmp_path / "shards").mkdir()
    for n in range(3):
        (tmp_path / "shards" / f"part-{n}.txt").write_text("\n".join(PARAGRAPHS[n::3]) + "\n")
    (tmp_path / "shards" / ".hidden").write_text("not a shard")
    files = expand_corpus_paths(str(tmp_path / "shards" / "*.txt"))
    assert files == expand_corpus_paths(str(tmp_path / "shards")) == \
        expand_corpus_paths([str(p) for p in files])
    assert [p.name for p in files] == ["part-0.txt", "part-1.txt", "part-2.txt"]
    with pytest.raises(ConfigError, match="matches no file"):
        expand_corpus_paths(str(tmp_path / "nothing-*.txt"))


def test_the_store_does_not_depend_on_the_number_of_workers(tmp_path, tokenizer):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(PARAGRAPHS * 40) + "\n")
    token_store.BLOCK_BYTES, before = 4096, token_store.BLOCK_BYTES  # many blocks, several in flight
    try:
        one = prepare(spec_of(corpus), tokenizer, tmp_path / "one", workers=1, progress=False)
        two = prepare(spec_of(corpus), tokenizer, tmp_path / "two", workers=2, progress=False)
    finally:
        token_store.BLOCK_BYTES = before
    assert one["files"] == two["files"] and one["splits"] == two["splits"]
    check_store(TokenStore(tmp_path / "two"), tokenizer, PARAGRAPHS * 40)


def test_blank_line_paragraphs_are_never_cut_between_blocks(tmp_path, tokenizer):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n\n".join(p.replace(" is ", "\nis ") for p in PARAGRAPHS) + "\n")
    token_store.BLOCK_BYTES, before = 1000, token_store.BLOCK_BYTES
    try:
        store = ensure_store(spec_of(corpus, paragraphs="blank_line"), tokenizer, tmp_path, workers=2,
                             progress=False)
    finally:
        token_store.BLOCK_BYTES = before
    check_store(store, tokenizer, PARAGRAPHS)


def test_a_prepared_store_is_reopened_without_reading_the_corpus(tmp_path, tokenizer, monkeypatch):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(PARAGRAPHS) + "\n")
    first = ensure_store(spec_of(corpus), tokenizer, tmp_path / "cache", workers=1, progress=False)
    monkeypatch.setattr(token_store, "prepare", lambda *a, **k: pytest.fail("prepared twice"))
    again = ensure_store(spec_of(corpus), tokenizer, tmp_path / "cache", workers=1, progress=False)
    assert again.directory == first.directory
    monkeypatch.undo()
    corpus.write_text("\n".join(PARAGRAPHS[:50]) + "\n")  # a changed file is a new store
    changed = ensure_store(spec_of(corpus), tokenizer, tmp_path / "cache", workers=1, progress=False)
    assert changed.directory != first.directory and changed.num_documents("train") < 50
    other = ConvBertTokenizerFast(vocab={t: i for i, t in enumerate(list(tokenizer.get_vocab())[:2000])})
    assert fingerprint(spec_of(corpus), other) != fingerprint(spec_of(corpus), tokenizer)
    with pytest.raises(DataError, match="another tokenizer"):
        changed.check_tokenizer(other)


def _prepare_and_count(args):
    corpus, cache = args
    store = ensure_store(spec_of(corpus), ConvBertTokenizerFast(), cache, workers=1, progress=False)
    return str(store.directory)


def test_concurrent_processes_prepare_once_and_share_the_store(tmp_path, monkeypatch):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(PARAGRAPHS * 20) + "\n")
    calls = tmp_path / "calls"
    real = token_store.prepare

    def counting(*args, **kwargs):
        with open(calls, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(token_store, "prepare", counting)
    with multiprocessing.get_context("fork").Pool(3) as pool:
        directories = pool.map(_prepare_and_count, [(corpus, tmp_path / "cache")] * 3)
    assert len(set(directories)) == 1 and len(calls.read_text().split()) == 1


def test_an_interrupted_preparation_leaves_nothing_that_looks_complete(tmp_path, tokenizer, monkeypatch):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(PARAGRAPHS) + "\n")

    def killed(self, spec):
        raise KeyboardInterrupt

    monkeypatch.setattr(token_store._StoreWriter, "finish", killed)
    with pytest.raises(KeyboardInterrupt):
        ensure_store(spec_of(corpus), tokenizer, tmp_path / "cache", workers=1, progress=False)
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []
    monkeypatch.undo()
    check_store(ensure_store(spec_of(corpus), tokenizer, tmp_path / "cache", workers=1, progress=False),
                tokenizer, PARAGRAPHS)


def test_bad_corpora_get_one_clear_error(tmp_path, tokenizer):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n   \n")
    with pytest.raises(DataError, match=r"0 non-empty paragraph\(s\)"):
        ensure_store(spec_of(empty), tokenizer, tmp_path, workers=1, progress=False)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("first line\nsecond line\ncaf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.txt:3: not UTF-8 \(byte b'\\xe9' at offset 26\).*iconv"):
        ensure_store(spec_of(latin), tokenizer, tmp_path, workers=2, progress=False)
    records = tmp_path / "r.jsonl"
    records.write_text('{"text": "fine"}\n{"body": "no text"}\n')
    with pytest.raises(DataError, match=r"r.jsonl:2: no field 'text'.*data.text_field"):
        ensure_store(spec_of(records), tokenizer, tmp_path, workers=1, progress=False)
    assert not list(tmp_path.glob(".*partial*")), "no half-made store is left behind"


def test_a_damaged_store_is_refused_and_verify_finds_altered_bytes(tmp_path, tokenizer):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(PARAGRAPHS) + "\n")
    store = ensure_store(spec_of(corpus), tokenizer, tmp_path, workers=1, progress=False)
    tokens = store.directory / "train.bin"
    data = bytearray(tokens.read_bytes())
    data[10] ^= 0xFF
    tokens.write_bytes(bytes(data))  # same size: only the checksum sees it
    TokenStore(store.directory)
    with pytest.raises(DataError, match="SHA-256"):
        TokenStore(store.directory).verify()
    tokens.write_bytes(bytes(data[:-2]))
    with pytest.raises(DataError, match=r"damaged: train.bin has \d+ bytes"):
        ensure_store(spec_of(corpus), tokenizer, tmp_path, workers=1, progress=False)


def test_windows_cover_the_tokens_with_two_segments_where_a_document_starts(tmp_path, tokenizer):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(PARAGRAPHS) + "\n")
    store = ensure_store(spec_of(corpus), tokenizer, tmp_path, workers=1, progress=False)
    cls, sep, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    windows = PackedWindows(store, "train", 24, cls, sep, pad)
    tokens, offsets = store.tokens("train"), set(store.offsets("train").tolist())
    stream = []
    for i in range(len(windows)):
        ids, types = windows.window(i)
        assert len(ids) <= 24 and ids[0] == cls and ids[-1] == sep
        start = i * windows.stride
        if types[-1] == 1:  # two segments: cut at a document start, token types 0 then 1
            first = int(np.argmax(types)) - 1
            assert ids[first] == sep and start + first - 1 in offsets and types[:first + 1].sum() == 0
            body = [*ids[1:first], *ids[first + 1:-1]]
        else:
            body = list(ids[1:-1])
        assert body == tokens[start:start + len(body)].tolist()
        stream += body[:windows.stride]
    assert stream == tokens.tolist(), "the windows read every token once"
    two = sum(windows.window(i)[1][-1] for i in range(len(windows)))
    assert two > len(windows) / 2, "most windows have two segments"
    batch = windows.batch([0, len(windows) - 1])
    assert batch["input_ids"].shape == (2, 24) and batch["attention_mask"][0].all()


def test_a_killed_preparation_leaves_only_a_hidden_directory_that_the_next_one_removes(tmp_path, tokenizer):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(PARAGRAPHS) + "\n")
    spec = spec_of(corpus)
    stale = tmp_path / "cache" / f".{fingerprint(spec, tokenizer)}.partial-999999999"  # no such process
    stale.mkdir(parents=True)
    (stale / "train.bin").write_bytes(b"half")
    store = ensure_store(spec, tokenizer, tmp_path / "cache", workers=1, progress=False)
    assert not stale.exists() and store.num_documents("train") > 0
