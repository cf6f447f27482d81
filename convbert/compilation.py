"""``torch.compile`` for ConvBERT modules, the way training and the benchmarks use it.

- Dynamic shapes from the first call: one graph serves every batch length (and the smaller last batch)
  instead of a recompilation per length.
- The pretraining head computes logits only at the labelled positions, a selection whose size depends on
  the data (``nonzero``); dynamo is told to capture such operators
  (``capture_dynamic_output_shape_ops``, a process-wide setting) instead of breaking the graph there.

The eager fast paths step aside while a graph is captured (convbert/capture.py), so a compiled model runs
the plain formulation, fused by inductor.
"""

from __future__ import annotations

from torch import nn


def compile_in_place(module: nn.Module) -> None:
    """``module.compile(dynamic=True)`` (state-dict keys unchanged), with data-dependent shapes captured."""
    import torch._dynamo

    torch._dynamo.config.capture_dynamic_output_shape_ops = True
    module.compile(dynamic=True)
