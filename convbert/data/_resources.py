"""Locate files shipped inside ``convbert/data`` and open text files, compressed or not.

``importlib.resources`` is used (not ``__file__``) so the loaders keep working after a
regular, non-editable install of the wheel.
"""

from __future__ import annotations

import bz2
import gzip
import io
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from importlib.resources import files
from pathlib import Path
from typing import IO, Any, Union

# ``Traversable`` lives in a different module on each supported Python; only its ``open`` is used.
Source = Union[str, "os.PathLike[str]", Any]
"""A filesystem path (``str`` / ``PathLike``) or an ``importlib.resources`` Traversable."""


def _decompressor(suffix: str) -> Callable[[IO[bytes]], IO[bytes]] | None:
    """The opener for a compressed suffix; ``lzma`` is imported lazily as some Pythons lack it."""
    if suffix == ".xz":
        import lzma

        return lzma.open  # type: ignore[return-value]
    return {".gz": gzip.open, ".bz2": bz2.open}.get(suffix)  # type: ignore[return-value]


def data_path(name: str) -> Any:
    """Return the shipped resource ``name`` (e.g. ``"sentiment/rotten_tomatoes.tsv"``).

    The result is a Traversable (a ``pathlib.Path`` for ordinary installs) accepted by every reader
    in :mod:`convbert.data`. Raises ``FileNotFoundError`` naming the resource when it is absent.
    """
    resource = files("convbert.data")
    for part in name.split("/"):  # one level at a time: multi-argument joinpath needs Python 3.11
        resource = resource.joinpath(part)
    if not resource.is_file():
        raise FileNotFoundError(f"convbert.data has no shipped file {name!r} (looked at {resource})")
    return resource


def _name(source: Source) -> str:
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else str(source)


@contextmanager
def open_text(source: Source) -> Iterator[IO[str]]:
    """Open ``source`` as UTF-8 text, decompressing ``.gz`` / ``.xz`` / ``.bz2`` by file suffix.

    A missing file raises ``FileNotFoundError`` whose message names the path.
    """
    label = _name(source)
    opener = Path(source).open if isinstance(source, (str, os.PathLike)) else source.open
    with ExitStack() as stack:
        try:
            raw = stack.enter_context(opener("rb"))
        except FileNotFoundError as error:
            raise FileNotFoundError(f"no such data file: {label}") from error
        decompress = _decompressor(Path(label).suffix)
        binary = stack.enter_context(decompress(raw)) if decompress else raw
        yield stack.enter_context(io.TextIOWrapper(binary, encoding="utf-8"))
