"""Moved to ``convbert.conversion.tf1_checkpoint``; this old name stays importable (a deprecation warning says
so). A deprecation shim: the only module under interop/ that imports above it."""

from __future__ import annotations

import sys
import warnings

from convbert.conversion import tf1_checkpoint as _moved

warnings.warn("convbert.interop.tf1_checkpoint moved to convbert.conversion.tf1_checkpoint; import it from "
              "there", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
