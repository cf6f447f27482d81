"""Moved to ``convbert.cli.predict``; this old name stays importable (a deprecation warning says so)."""

from __future__ import annotations

import sys
import warnings

from convbert.cli import predict as _moved

if __name__ == "__main__":
    sys.exit(_moved.main())
else:
    warnings.warn("convbert.predict_cli moved to convbert.cli.predict; import it from there",
                  DeprecationWarning, stacklevel=2)
    sys.modules[__name__] = _moved
