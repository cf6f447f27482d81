"""BERT's input corruption for masked-LM and replaced-token detection: select 15%, then 80/10/10.

All randomness comes from the ``generator`` passed in, so a run's masks are reproducible and a resumed run
continues the same stream (its state is in the checkpoint).
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


def mask_tokens(
    input_ids: torch.Tensor,
    special: torch.Tensor,
    rule: MaskingRule,
    mask_token_id: int,
    vocab_size: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(corrupted ids, labels): labels hold the original id at selected positions and -100 elsewhere.

    ``special``: bool (B, L), True for tokens never selected ([CLS], [SEP], padding). Every sequence gets at
    least one selected token when it has any real token, so no row of a batch is without a target.
    """
    device = input_ids.device
    scores = torch.rand(input_ids.shape, generator=generator, device=device)
    scores = scores.masked_fill(special, 2.0)
    selected = scores < rule.mask_prob
    # at least one prediction per sequence: its lowest-scoring real token
    first = scores.argmin(dim=-1, keepdim=True)
    has_real = (~special).any(dim=-1, keepdim=True)
    selected = selected | (torch.zeros_like(selected).scatter(-1, first, True) & has_real)
    labels = input_ids.masked_fill(~selected, IGNORE_INDEX)

    action = torch.rand(input_ids.shape, generator=generator, device=device)
    to_mask = selected & (action < rule.mask_token_prob)
    random_end = rule.mask_token_prob + rule.random_token_prob
    to_random = selected & (action >= rule.mask_token_prob) & (action < random_end)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator, device=device)
    corrupted = input_ids.masked_fill(to_mask, mask_token_id)
    corrupted = torch.where(to_random, random_ids, corrupted)
    return corrupted, labels
