"""Whether the code is being captured as a graph (``torch.compile``, ``torch.jit.trace``, ``torch.export``).

The eager fast paths (oneDNN projections, custom autograd functions, checks that read tensor values in
Python) step aside while a graph is captured: a capture must see plain PyTorch ops whose structure does not
depend on the values it was traced with.
"""

from __future__ import annotations

import torch


def capturing() -> bool:
    return torch.compiler.is_compiling() or torch.jit.is_tracing()
