"""``torch.compile`` for ConvBERT modules, the way training and the benchmarks use it.

- Dynamic shapes from the first call: one graph serves every batch length (and the smaller last batch)
  instead of a recompilation per length.
- The pretraining head computes logits only at the labelled positions, a selection whose size depends on
  the data (``nonzero``); dynamo is told to capture such operators
  (``capture_dynamic_output_shape_ops``, a process-wide setting) instead of breaking the graph there.

The eager fast paths step aside while a graph is captured (convbert/capture.py), so a compiled model runs
the plain formulation, fused by inductor. On the CPU that is no faster than our eager path for training;
for inference, compiling with inductor's *freezing* (weights folded into the graph as constants and
prepacked) is a net gain (docs/performance.md): ``compile_for_inference``.
"""

from __future__ import annotations

from torch import nn


def compile_in_place(module: nn.Module) -> None:
    """``module.compile(dynamic=True)`` (state-dict keys unchanged), with data-dependent shapes captured."""
    import torch._dynamo

    torch._dynamo.config.capture_dynamic_output_shape_ops = True
    module.compile(dynamic=True)


def compile_for_inference(module: nn.Module) -> None:
    """``compile_in_place`` with inductor's freezing for this module's calls only: calls without gradients
    run a graph with the parameters folded in as constants (on the CPU, prepacked for the GEMM library).

    Freezing is a process-wide inductor setting read while a graph compiles (``torch.compile``'s per-call
    ``options`` do not reach it), so it is switched on around this module's calls, where its compilations
    happen, and nowhere else. The graph keeps the weights it first saw: for a model that is done training
    (prediction, serving).
    """
    from torch._inductor import config as inductor_config

    compile_in_place(module)
    compiled = getattr(module, "_compiled_call_impl", None)
    if compiled is None:  # nn.Module.compile keeps its compiled call there (torch >= 2.2)
        raise RuntimeError("this torch's nn.Module.compile is not the one compile_for_inference wraps")

    def frozen_call(*args, **kwargs):
        with inductor_config.patch(freezing=True):
            return compiled(*args, **kwargs)

    module._compiled_call_impl = frozen_call
