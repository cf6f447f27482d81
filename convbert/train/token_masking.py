"""BERT's input corruption for masked-LM and replaced-token detection: select 15%, then 80/10/10.

In training the random numbers are drawn per step for the whole global batch from a generator seeded by
(seed, step) alone, and each process takes the rows of its own examples (``step_draws``): an example's mask
depends on (seed, step, its place in the global batch), not on the process, the number of processes or the
gradient-accumulation micro-batch that reads it, so those runs see the same masks (and a resumed run repeats
them). Evaluation draws from a fixed generator (``draws``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from convbert.labels import IGNORE_INDEX


@dataclass
class MaskingRule:
    mask_prob: float = 0.15
    mask_token_prob: float = 0.8
    random_token_prob: float = 0.1


def draws(shape: tuple[int, int], vocab_size: int, generator: torch.Generator | None,
          device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """The random numbers one batch of masking (and RTD's sampling) uses, all of ``shape``."""
    return {"select": torch.rand(shape, generator=generator, device=device),
            "action": torch.rand(shape, generator=generator, device=device),
            "random": torch.randint(vocab_size, shape, generator=generator, device=device),
            "sample": torch.rand(shape, generator=generator, device=device)}


def step_seed(seed: int, step: int) -> int:
    """A generator seed for (seed, step): SplitMix64 of both, so neighbouring steps are unrelated."""
    x = (seed * 0x9E3779B97F4A7C15 + step + 1) & (2**64 - 1)
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    return (x ^ (x >> 31)) & (2**63 - 1)


def step_draws(seed: int, step: int, global_rows: int, length: int, vocab_size: int, rows: torch.Tensor,
               device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """The draws of global-batch rows ``rows`` at ``step``: the whole global batch is drawn (a few numbers per
    token) and this process's rows are taken."""
    generator = torch.Generator(device=device).manual_seed(step_seed(seed, step))
    drawn = draws((global_rows, length), vocab_size, generator, device)
    rows = rows.to(device)
    return {k: v.index_select(0, rows) for k, v in drawn.items()}


def mask_tokens(
    input_ids: torch.Tensor,
    special: torch.Tensor,
    rule: MaskingRule,
    mask_token_id: int,
    vocab_size: int,
    generator: torch.Generator | None = None,
    drawn: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(corrupted ids, labels): labels hold the original id at selected positions and -100 elsewhere.

    ``special``: bool (B, L), True for tokens never selected ([CLS], [SEP], padding). Every sequence gets at
    least one selected token when it has any real token, so no row of a batch is without a target.
    """
    if drawn is None:
        drawn = draws(tuple(input_ids.shape), vocab_size, generator, input_ids.device)
    length = input_ids.shape[-1]
    drawn = {k: v[..., :length] for k, v in drawn.items()}
    scores = drawn["select"].masked_fill(special, 2.0)
    selected = scores < rule.mask_prob
    # at least one prediction per sequence: its lowest-scoring real token
    first = scores.argmin(dim=-1, keepdim=True)
    has_real = (~special).any(dim=-1, keepdim=True)
    selected = selected | (torch.zeros_like(selected).scatter(-1, first, True) & has_real)
    labels = input_ids.masked_fill(~selected, IGNORE_INDEX)

    action = drawn["action"]
    to_mask = selected & (action < rule.mask_token_prob)
    random_end = rule.mask_token_prob + rule.random_token_prob
    to_random = selected & (action >= rule.mask_token_prob) & (action < random_end)
    random_ids = drawn["random"]
    corrupted = input_ids.masked_fill(to_mask, mask_token_id)
    corrupted = torch.where(to_random, random_ids, corrupted)
    return corrupted, labels
