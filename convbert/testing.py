"""The block contract suite, importable so that plugin authors run it on their own blocks.

    from convbert.testing import check_block
    check_block(registry.get("mixer", "my_mixer"), registry)

Every kind has a contract: the output shape; padding respected (a mixer's or layer's outputs at real tokens
do not change when the padded positions change); gradients reach every parameter; eval is deterministic.
"""

from __future__ import annotations

import copy

import torch

from convbert.composition import BuildContext
from convbert.kernels.sequence_mask import SequenceMask
from convbert.registry import BlockSpec, Registry

HIDDEN, BATCH, LENGTH, VOCAB = 16, 2, 7, 50


class ContractError(AssertionError):
    """A block broke its kind's contract; the message names the block and the clause."""


def _fail(spec: BlockSpec, clause: str) -> None:
    raise ContractError(f"{spec.kind} block {spec.name!r} ({spec.provider}): {clause}")


def build_example(spec: BlockSpec, registry: Registry, hidden: int = HIDDEN) -> torch.nn.Module:
    """Build ``spec`` from its registered example (or its defaults) at a tiny width."""
    ctx = BuildContext(registry, hidden, path=f"contract.{spec.name}")
    node = {"name": spec.name, **copy.deepcopy(spec.example or {})}
    if spec.kind == "embedding":
        node.setdefault("vocab_size", VOCAB)
    if spec.kind == "head" and "vocab_size" in spec.defaults():
        node.setdefault("vocab_size", VOCAB)
    return ctx.build(spec.kind, node, "block")


def _inputs(seed: int = 0) -> tuple[torch.Tensor, SequenceMask, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(BATCH, LENGTH, HIDDEN, generator=g)
    keep = torch.ones(BATCH, LENGTH)
    keep[1, LENGTH - 3:] = 0
    return hidden, SequenceMask.from_attention_mask(keep, hidden.dtype), keep


def _run(spec: BlockSpec, block: torch.nn.Module, hidden: torch.Tensor, mask: SequenceMask) -> torch.Tensor:
    if spec.kind == "embedding":
        ids = (hidden.abs().sum(-1) * 7).long() % VOCAB
        return block(ids)
    if spec.kind == "mixer":
        return block(hidden, mask, False, {})[0]
    if spec.kind == "layer":
        return block(hidden, mask)[0]
    if spec.kind == "ffn":
        return block(hidden)
    out = block(hidden)
    return out["logits"] if "logits" in out else out[0]


def check_block(spec: BlockSpec, registry: Registry) -> None:
    """Raise ContractError if the block breaks its kind's contract."""
    torch.manual_seed(0)
    block = build_example(spec, registry)
    hidden, mask, keep = _inputs()

    block.train()
    out = _run(spec, block, hidden, mask)
    if spec.kind in ("mixer",):
        width = getattr(block, "output_size", None)
        if width is None:
            _fail(spec, "a mixer must expose `output_size`, the width of its output")
        if tuple(out.shape) != (BATCH, LENGTH, width):
            _fail(spec, f"output shape {tuple(out.shape)}, expected {(BATCH, LENGTH, width)}")
    elif spec.kind in ("layer", "ffn", "embedding") and tuple(out.shape) != (BATCH, LENGTH, HIDDEN):
        _fail(spec, f"output shape {tuple(out.shape)}, expected {(BATCH, LENGTH, HIDDEN)}")
    if not torch.isfinite(out).all():
        _fail(spec, "output has NaN or inf")

    if any(p.requires_grad for p in block.parameters()):
        (out.float() * torch.linspace(0.5, 1.5, out.shape[-1])).sum().backward()
    no_grad = [
        n for n, p in block.named_parameters()
        if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())
    ]
    if no_grad:
        _fail(spec, f"no (finite) gradient reaches {', '.join(no_grad)}")

    block.eval()
    with torch.no_grad():
        first, second = _run(spec, block, hidden, mask), _run(spec, block, hidden, mask)
        if not torch.equal(first, second):
            _fail(spec, "eval mode is not deterministic")
        if spec.kind in ("mixer", "layer"):
            noisy = hidden + (1 - keep)[..., None] * torch.randn_like(hidden) * 10
            changed = _run(spec, block, noisy, mask)
            real = keep.bool()
            if not torch.allclose(first[real], changed[real], atol=1e-5, rtol=1e-4):
                _fail(spec, "outputs at real tokens change when padded positions change (mask not respected)")


def check_all(registry: Registry | None = None) -> dict[str, str]:
    """Run the contract on every registered block; returns {"kind/name": "ok" or the failure}."""
    registry = registry or Registry.default()
    results = {}
    for spec in registry.list_blocks():
        try:
            check_block(spec, registry)
            results[f"{spec.kind}/{spec.name}"] = "ok"
        except Exception as exc:  # noqa: BLE001 - deliberate: report every block, not just the first failure
            results[f"{spec.kind}/{spec.name}"] = f"{type(exc).__name__}: {exc}"
    return results
