"""The memory-mapped token store: a corpus tokenized once, read as packed windows without holding it in
memory.

    <cache>/tokens/<fingerprint>/
        train.bin  dev.bin       token ids, uint16 when the vocabulary fits (else uint32), documents in a row
        train.idx  dev.idx       int64 offsets where each document starts, and the end (documents + 1 entries)
        unigram.bin              int64 count of every token id in train.bin (the unigram baseline's counts)
        meta.json                dtype, counts, inputs, tokenizer hash, throughput, SHA-256 of the files above

As nanoGPT's ``prepare.py`` and Megatron's indexed datasets: training opens the files with ``np.memmap``, so
memory and start-up do not grow with the corpus. The directory's name is a fingerprint of the inputs (paths,
sizes, modification times), the reading options and the tokenizer, so checking a store at launch is O(1); the
full checksum is computed when preparation ends and on request (``verify``). A store is prepared in a hidden
directory renamed into place when complete, under a lock file: on a machine, one process prepares while the
others (torchrun's other ranks) wait on the lock, outside any collective that could time out.

A document is a paragraph of the input (a line, a blank-line separated block, or a record's text). Its dev
membership is a hash of its text, so a document is in the same split whatever the order or sharding of files.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convbert.data.readers import COMPRESSED, UTF8_FIX, corpus_format, expand_corpus_paths, iter_column_texts
from convbert.errors import ConfigError, DataError
from convbert.interop.files import sha256_file

FORMAT = 1
SPLIT_NAMES = ("train", "dev")
BLOCK_BYTES = 1 << 20  # text handed to a worker at a time (1 MiB: small enough to keep every worker busy)
TEXTS_PER_BLOCK = 2_000  # records handed to a worker at a time (JSONL, parquet, datasets)
DEV_KEY = b"convbert-dev-split-v1"


# -- what a store is made from ----------------------------------------------------------------------------
@dataclass(frozen=True)
class CorpusSpec:
    """The inputs of a store and how they are read: files (or shipped sources), paragraphs, field, dev."""

    files: tuple[str, ...]  # absolute paths of the inputs
    paragraphs: str = "line"  # text files: "line" or "blank_line"
    text_field: str = "text"  # JSONL / parquet / datasets: the column holding the text
    dev_fraction: float = 0.02
    sources: tuple[str, ...] = ()  # shipped corpus names when ``files`` is empty

    @classmethod
    def from_data(cls, data: Any) -> CorpusSpec:
        """The corpus a ``data`` node (``CorpusConfig``) names: ``path`` (files, globs, directories) or the
        shipped ``sources``."""
        if data.path is not None:
            files = tuple(str(p.resolve()) for p in expand_corpus_paths(data.path))
            return cls(files, data.paragraphs, getattr(data, "text_field", "text"), data.dev_fraction)
        return cls((), data.paragraphs, "text", data.dev_fraction, tuple(data.sources))

    def identity(self) -> dict[str, Any]:
        """What the fingerprint hashes: every input's path, size and modification time (O(1) per file)."""
        if self.files:
            stats = [(f, *_stat(f)) for f in self.files]
        else:
            stats = [(name, *_shipped_stat(name)) for name in self.sources]
        return {"format": FORMAT, "inputs": stats, "paragraphs": self.paragraphs,
                "text_field": self.text_field, "dev_fraction": self.dev_fraction}

    def describe(self) -> str:
        if self.files:
            first = self.files[0] + (f" and {len(self.files) - 1} more" if len(self.files) > 1 else "")
            return first
        return "shipped corpus " + "+".join(self.sources)


def _stat(file: str) -> tuple[int, int]:
    st = os.stat(file)
    if os.path.isdir(file):  # a datasets directory: its files' sizes and times
        parts = sorted(p for p in Path(file).rglob("*") if p.is_file())
        return sum(p.stat().st_size for p in parts), max((p.stat().st_mtime_ns for p in parts), default=0)
    return st.st_size, st.st_mtime_ns


def _shipped_stat(name: str) -> tuple[int, int]:
    from convbert.data.datasets import CORPUS_FILES

    if name in CORPUS_FILES:
        from convbert.data._resources import data_path

        resource = data_path(CORPUS_FILES[name])
        return (resource.stat().st_size, 0) if isinstance(resource, Path) else (0, 0)
    return (sys.hexversion, 0)  # pydoc: the interpreter's own help text


def tokenizer_hash(tokenizer: Any) -> str:
    """SHA-256 of the tokenizer's full serialization (vocabulary, normalizer, pre-tokenizer ...)."""
    return hashlib.sha256(_backend_json(tokenizer).encode()).hexdigest()


def _backend_json(tokenizer: Any) -> str:
    from tokenizers import Tokenizer

    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    clean = Tokenizer.from_str(backend.to_str())
    clean.no_truncation()
    clean.no_padding()
    return clean.to_str()


def fingerprint(spec: CorpusSpec, tokenizer: Any) -> str:
    payload = json.dumps({**spec.identity(), "tokenizer": tokenizer_hash(tokenizer)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def default_cache_dir() -> Path:
    """``~/.cache/convbert/tokens`` (``XDG_CACHE_HOME`` respected); ``data.cache_dir`` moves it."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "convbert" / "tokens"


# -- the store, opened ------------------------------------------------------------------------------------
class TokenStore:
    """An opened store: ``tokens(split)`` and ``offsets(split)`` are memory maps, opened lazily in each
    process (a DataLoader worker re-opens them instead of receiving a copy)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        meta_file = self.directory / "meta.json"
        try:
            self.meta = json.loads(meta_file.read_text())
        except (OSError, ValueError) as error:
            raise DataError(f"{self.directory} is not a complete token store ({meta_file}: {error}); delete "
                            "it and prepare again (convbert-prepare, or any run on the corpus)") from None
        damage = self.size_damage()
        if damage:
            raise DataError(f"token store {self.directory} is damaged: {damage}; delete it and prepare again")
        self.dtype = np.dtype(self.meta["dtype"])
        self._maps: dict[str, np.ndarray] = {}

    def size_damage(self) -> str | None:
        for name, expected in self.meta["files"].items():
            file = self.directory / name
            if not file.is_file():
                return f"{name} is missing"
            if file.stat().st_size != expected["bytes"]:
                return f"{name} has {file.stat().st_size} bytes, {expected['bytes']} were written"
        return None

    def verify(self) -> None:
        """The full check: every file's SHA-256 against the one recorded at preparation."""
        for name, expected in self.meta["files"].items():
            if sha256_file(self.directory / name) != expected["sha256"]:
                raise DataError(f"token store {self.directory}: {name} does not match its SHA-256 checksum "
                                "(altered after it was written); delete the store and prepare again")

    def check_tokenizer(self, tokenizer: Any) -> None:
        """Refuse a store made with another tokenizer (its ids would mean other pieces)."""
        if self.meta["tokenizer_sha256"] != tokenizer_hash(tokenizer):
            raise DataError(f"token store {self.directory} was made with another tokenizer than this run's; "
                            "prepare the corpus with the run's tokenizer (same model / tokenizer options)")

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_maps": {}}

    def _map(self, name: str, dtype: Any) -> np.ndarray:
        if name not in self._maps:
            file = self.directory / name
            self._maps[name] = (np.memmap(file, dtype=dtype, mode="r") if file.stat().st_size
                                else np.zeros(0, dtype=dtype))
        return self._maps[name]

    def tokens(self, split: str) -> np.ndarray:
        return self._map(f"{split}.bin", self.dtype)

    def offsets(self, split: str) -> np.ndarray:
        return self._map(f"{split}.idx", np.int64)

    def unigram_counts(self) -> np.ndarray:
        return np.fromfile(self.directory / "unigram.bin", dtype=np.int64)

    def num_tokens(self, split: str) -> int:
        return int(self.meta["splits"][split]["tokens"])

    def num_documents(self, split: str) -> int:
        return int(self.meta["splits"][split]["documents"])


# -- preparing ----------------------------------------------------------------------------------------------
def ensure_store(spec: CorpusSpec, tokenizer: Any, cache_dir: str | Path | None = None, *,
                 workers: int | None = None, progress: bool = True,
                 say: Callable[[str], None] | None = None) -> TokenStore:
    """The store of ``spec`` tokenized by ``tokenizer``: opened when it exists (an O(1) check), else prepared
    once under a lock (another process preparing it is waited for, then its store is used)."""
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    directory = root / fingerprint(spec, tokenizer)
    if (directory / "meta.json").is_file():
        return TokenStore(directory)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"data.cache_dir={root}: cannot create it ({error.strerror}); choose a writable "
                          "directory") from None
    with _locked(root / f"{directory.name}.lock", say, spec):
        if not (directory / "meta.json").is_file():
            _remove_stale_partials(directory)
            prepare(spec, tokenizer, directory, workers=workers, progress=progress, say=say)
    return TokenStore(directory)


@contextlib.contextmanager
def _locked(lock_file: Path, say: Callable[[str], None] | None, spec: CorpusSpec) -> Iterator[None]:
    with open(lock_file, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if say:
                say(f"waiting for another process to finish preparing {spec.describe()} ({lock_file})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_stale_partials(directory: Path) -> None:
    """Hidden directories left by a preparation that was killed (its process is gone): never used, removed."""
    for partial in directory.parent.glob(f".{directory.name}.partial-*"):
        pid = partial.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists() and sys.platform == "linux":
            shutil.rmtree(partial, ignore_errors=True)


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def prepare(spec: CorpusSpec, tokenizer: Any, directory: str | Path, *, workers: int | None = None,
            progress: bool = True, say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Tokenize ``spec`` into the store ``directory`` with ``workers`` processes; returns its meta.

    Blocks of text go to the workers in order and come back in order, so the store's bytes do not depend on
    the number of workers. Written into a hidden sibling directory, renamed into place when complete."""
    from tqdm.auto import tqdm

    directory = Path(directory)
    workers = max(1, workers or available_cpus())
    backend = _backend_json(tokenizer)
    vocab = len(tokenizer)
    dtype = np.dtype(np.uint16 if vocab <= 1 << 16 else np.uint32)
    partial = directory.parent / f".{directory.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    started = time.perf_counter()
    plain = spec.files and all(corpus_format(Path(f)) == "text" and Path(f).suffix not in COMPRESSED
                               for f in spec.files)
    bar = tqdm(total=_input_bytes(spec) if plain else None, unit="B", unit_scale=True,
               desc=f"preparing {spec.describe()}",
               disable=not (progress and sys.stderr.isatty()))
    writer = _StoreWriter(partial, dtype, vocab)
    try:
        with _pool(workers, (backend, dtype, spec.dev_fraction)) as run:
            for result in run(_blocks(spec)):
                writer.add(result)
                bar.update(result[1])
        bar.close()
        meta = writer.finish(spec)
        seconds = time.perf_counter() - started
        meta.update(tokenizer_sha256=tokenizer_hash(tokenizer), vocab_size=vocab, workers=workers,
                    seconds=round(seconds, 3), corpus=spec.describe(), identity=spec.identity())
        (partial / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            os.rename(partial, directory)
        except OSError:  # another process without our lock (another machine on a shared disk) was first
            if not (directory / "meta.json").is_file():
                raise
            shutil.rmtree(partial, ignore_errors=True)
    except BaseException:
        bar.close()
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if say:
        say(summary_line(meta, directory))
    return meta


def summary_line(meta: dict[str, Any], directory: Path) -> str:
    tokens = sum(s["tokens"] for s in meta["splits"].values())
    documents = sum(s["documents"] for s in meta["splits"].values())
    size = sum(f["bytes"] for f in meta["files"].values())
    mb = meta["text_bytes"] / 1e6
    rate = mb / max(meta["seconds"], 1e-9)
    return (f"prepared {meta['corpus']}: {documents:,} documents, {tokens:,} tokens "
            f"(dev {meta['splits']['dev']['tokens']:,}), {mb:,.1f} MB of text in {meta['seconds']:.1f} s "
            f"({rate:.2f} MB/s, {meta['workers']} worker{'s' * (meta['workers'] > 1)}); "
            f"store {size / 1e6:,.1f} MB at {directory}")


def _input_bytes(spec: CorpusSpec) -> int:
    return sum(_stat(f)[0] for f in spec.files) if spec.files else 0


@dataclass
class _Block:
    """Work for a worker: raw text bytes of a file (split into paragraphs there), or a list of texts."""

    source: str
    first_line: int = 1  # line number of the block's first byte (text files)
    first_byte: int = 0  # offset of the block's first byte in the (decompressed) file
    data: bytes = b""
    texts: list[str] | None = None
    paragraphs: str = "line"


def _blocks(spec: CorpusSpec) -> Iterator[_Block]:
    """The corpus as blocks, in order. Text files are cut at line ends (at blank lines for ``blank_line``
    paragraphs); only the workers decode and split them."""
    if not spec.files:
        from convbert.data.datasets import iter_corpus

        texts = list(iter_corpus(list(spec.sources)))
        for start in range(0, len(texts), TEXTS_PER_BLOCK):
            yield _Block("+".join(spec.sources), texts=texts[start:start + TEXTS_PER_BLOCK])
        return
    for file in spec.files:
        path = Path(file)
        if corpus_format(path) != "text":
            texts: list[str] = []
            for text in iter_column_texts(path, spec.text_field):
                texts.append(text)
                if len(texts) == TEXTS_PER_BLOCK:
                    yield _Block(file, texts=texts)
                    texts = []
            if texts:
                yield _Block(file, texts=texts)
            continue
        yield from _text_blocks(path, spec.paragraphs)


def _text_blocks(path: Path, paragraphs: str) -> Iterator[_Block]:
    from convbert.data._resources import _decompressor

    with open(path, "rb") as raw:
        opener = _decompressor(path.suffix)
        handle = opener(raw) if opener else raw
        line, offset = 1, 0
        with handle if opener else contextlib.nullcontext():
            while True:
                data = handle.read(BLOCK_BYTES)
                if not data:
                    break
                data += handle.readline()  # end at a line end
                if paragraphs == "blank_line":  # ... and at a blank line, so no paragraph is cut in two
                    while not data.endswith((b"\n\n", b"\n\r\n")):
                        more = handle.readline()
                        if not more:
                            break
                        data += more
                yield _Block(str(path), line, offset, data, paragraphs=paragraphs)
                line, offset = line + data.count(b"\n"), offset + len(data)


@contextlib.contextmanager
def _pool(workers: int, setup: tuple) -> Iterator[Callable[[Iterator[_Block]], Iterator]]:
    """``run(blocks)``: the blocks' results in order, from ``workers`` processes (in this one for 1), with at
    most two blocks per worker in flight, so reading never runs ahead of tokenizing by more than that."""
    if workers == 1:
        before = os.environ.get("TOKENIZERS_PARALLELISM")
        _init_worker(*setup)
        try:
            yield lambda blocks: map(_tokenize_block, blocks)
        finally:
            if before is None:
                os.environ.pop("TOKENIZERS_PARALLELISM", None)
            else:
                os.environ["TOKENIZERS_PARALLELISM"] = before
        return
    import multiprocessing

    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=setup) as pool:
        def run(blocks: Iterator[_Block]) -> Iterator[Any]:
            pending: deque = deque()
            for block in blocks:
                pending.append(pool.apply_async(_tokenize_block, (block,)))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().get()
            while pending:
                yield pending.popleft().get()

        yield run


_WORKER: dict[str, Any] = {}


def _init_worker(backend: str, dtype: np.dtype, dev_fraction: float) -> None:
    from tokenizers import Tokenizer

    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # this process is one worker: one thread
    _WORKER.update(tokenizer=Tokenizer.from_str(backend), dtype=dtype, dev_fraction=dev_fraction)


def _paragraphs_of(block: _Block) -> list[str]:
    if block.texts is not None:
        return [t.strip() for t in block.texts if t.strip()]
    try:
        text = block.data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = block.first_line + block.data.count(b"\n", 0, error.start)
        byte = block.first_byte + error.start
        bad = block.data[error.start:error.start + 1]
        raise DataError(f"{block.source}:{line}: not UTF-8 (byte {bad!r} at offset {byte}); {UTF8_FIX}") \
            from None
    if block.first_byte == 0:
        text = text.removeprefix("\ufeff")
    if block.paragraphs == "line":
        return [s for s in (line.strip() for line in text.splitlines()) if s]
    return [" ".join(p.split()) for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]


def is_dev(paragraph: str, dev_fraction: float) -> bool:
    """A document's split, from a hash of its text alone (the same for any order or sharding of the files)."""
    digest = hashlib.blake2b(paragraph.encode(), digest_size=8, key=DEV_KEY).digest()
    return int.from_bytes(digest, "big") < dev_fraction * 2.0 ** 64


def _tokenize_block(block: _Block) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], int, int]:
    """({split: (token ids, document lengths)}, text bytes, paragraphs) of a block."""
    tokenizer, dtype = _WORKER["tokenizer"], _WORKER["dtype"]
    paragraphs = _paragraphs_of(block)
    dev_fraction = _WORKER["dev_fraction"]
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    dev = [is_dev(p, dev_fraction) for p in paragraphs]
    for split in SPLIT_NAMES:
        texts = [p for p, in_dev in zip(paragraphs, dev, strict=True) if in_dev == (split == "dev")]
        rows = [e.ids for e in encode(texts, add_special_tokens=False)] if texts else []
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        ids = np.fromiter((i for r in rows for i in r), dtype=dtype, count=int(lengths.sum()))
        out[split] = (ids, lengths[lengths > 0])
    size = len(block.data) if block.texts is None else sum(len(t.encode()) for t in block.texts)
    return out, size, len(paragraphs)


class _StoreWriter:
    """Appends the workers' results to the split files; ``finish`` writes offsets, counts and checksums."""

    def __init__(self, directory: Path, dtype: np.dtype, vocab: int) -> None:
        self.directory, self.dtype = directory, dtype
        self.files = {s: open(directory / f"{s}.bin", "wb") for s in SPLIT_NAMES}  # noqa: SIM115 (finish)
        self.lengths: dict[str, list[np.ndarray]] = {s: [] for s in SPLIT_NAMES}
        self.counts = np.zeros(vocab, dtype=np.int64)
        self.text_bytes = self.paragraphs = 0

    def add(self, result: tuple[dict[str, tuple[np.ndarray, np.ndarray]], int, int]) -> None:
        splits, size, paragraphs = result
        for split, (ids, lengths) in splits.items():
            self.files[split].write(ids.tobytes())
            self.lengths[split].append(lengths)  # one int64 per document: 1/60 of the text at most
        self.counts += np.bincount(splits["train"][0], minlength=len(self.counts))[:len(self.counts)]
        self.text_bytes += size
        self.paragraphs += paragraphs

    def finish(self, spec: CorpusSpec) -> dict[str, Any]:
        for handle in self.files.values():
            handle.close()
        lengths = {s: np.concatenate(v) if v else np.zeros(0, np.int64) for s, v in self.lengths.items()}
        documents = len(lengths["train"]) + len(lengths["dev"])
        if documents < 2:
            where = spec.describe()
            raise DataError(f"{where}: the corpus has {documents} non-empty paragraph(s); pretraining needs "
                            "at least 2 (one for dev). Check data.path, data.paragraphs and data.text_field")
        if not len(lengths["dev"]) or not len(lengths["train"]):
            self._move_last_document(lengths)
        splits = {}
        for split in SPLIT_NAMES:
            offsets = np.zeros(len(lengths[split]) + 1, dtype=np.int64)
            np.cumsum(lengths[split], out=offsets[1:])
            offsets.tofile(self.directory / f"{split}.idx")
            splits[split] = {"tokens": int(offsets[-1]), "documents": len(lengths[split])}
        self.counts.tofile(self.directory / "unigram.bin")
        names = [*(f"{s}.bin" for s in SPLIT_NAMES), *(f"{s}.idx" for s in SPLIT_NAMES), "unigram.bin"]
        files = {n: {"bytes": (self.directory / n).stat().st_size, "sha256": sha256_file(self.directory / n)}
                 for n in names}
        return {"format": FORMAT, "dtype": self.dtype.name, "splits": splits, "files": files,
                "text_bytes": self.text_bytes, "paragraphs": self.paragraphs}

    def _move_last_document(self, lengths: dict[str, np.ndarray]) -> None:
        """One split is empty (a tiny corpus): its last document moves from the other split."""
        source, target = ("train", "dev") if not len(lengths["dev"]) else ("dev", "train")
        size = int(lengths[source][-1])
        path = self.directory / f"{source}.bin"
        total = path.stat().st_size // self.dtype.itemsize
        moved = np.fromfile(path, dtype=self.dtype, offset=(total - size) * self.dtype.itemsize)
        with open(path, "r+b") as handle:
            handle.truncate((total - size) * self.dtype.itemsize)
        with open(self.directory / f"{target}.bin", "ab") as handle:
            handle.write(moved.tobytes())
        counts = np.bincount(moved, minlength=len(self.counts))[:len(self.counts)]
        self.counts += counts if target == "train" else -counts
        lengths[source], lengths[target] = lengths[source][:-1], np.append(lengths[target], size)


__all__: Sequence[str] = ("CorpusSpec", "TokenStore", "ensure_store", "fingerprint", "is_dev", "prepare",
                          "tokenizer_hash")
