"""One error path for every command: a mistake the user can fix is one line and exit status 2.

``convbert-train: error: <what, where, the fix>``, as argparse reports a bad option. Errors this package
raises on purpose (ConvBertError) and operating-system errors about the user's files and disks (a full disk, a
read-only or forbidden path) take this path; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import errno
import sys
from collections.abc import Iterator

from convbert.errors import ConvBertError

_OS_FIXES = {
    errno.ENOSPC: "free some space, or point the output (hydra.run.dir, --out) at another disk",
    errno.EDQUOT: "free some space within your quota, or write the output elsewhere",
    errno.EACCES: "check the permissions of that path, or write the output elsewhere",
    errno.EPERM: "check the permissions of that path, or write the output elsewhere",
    errno.EROFS: "that file system is read-only: write the output elsewhere",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of that path is a file, not a directory: check the path",
    errno.EISDIR: "that path is a directory where a file was expected: check the path",
    errno.ENAMETOOLONG: "shorten the path",
}


def user_error_message(exc: BaseException) -> str | None:
    """The one-line message for an error the user can fix, or None for a bug (which keeps its traceback)."""
    if isinstance(exc, ConvBertError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno in _OS_FIXES:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}; {_OS_FIXES[exc.errno]}"
    return None


def report_and_exit(prog: str, exc: BaseException) -> None:
    """Print ``<prog>: error: <message>`` and exit 2 if ``exc`` is the user's to fix; else re-raise it."""
    message = user_error_message(exc)
    if message is None:
        raise exc
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


@contextlib.contextmanager
def user_errors_reported(prog: str) -> Iterator[None]:
    """Run the body; a user-fixable error leaves as one line and exit status 2."""
    try:
        yield
    except (ConvBertError, OSError) as exc:
        report_and_exit(prog, exc)
