"""Moved to ``convbert.cli.convert``; this old name stays importable (a deprecation warning says so)."""

from __future__ import annotations

import sys
import warnings

from convbert.cli import convert as _moved

if __name__ == "__main__":
    sys.exit(_moved.main())
else:
    warnings.warn("convbert.convert_cli moved to convbert.cli.convert; import it from there",
                  DeprecationWarning, stacklevel=2)
    sys.modules[__name__] = _moved
