"""Recycled output memory: handed back only when nothing else references it, and never changes a result."""

from __future__ import annotations

import copy
import pickle
import threading

import pytest
import torch
from conftest import tiny_config_kwargs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

import convbert
from convbert.heads.masked_lm import MaskedLMHead
from convbert.kernels import linear as fast_linear
from convbert.kernels.recycle import RecycledOutputs

SHAPE = (4, 6)


def _pool_with_one() -> tuple[RecycledOutputs, torch.Tensor]:
    pool = RecycledOutputs(min_bytes=0)
    out = torch.randn(SHAPE)
    pool.keep(out)
    return pool, out


def _take(pool: RecycledOutputs, shape=SHAPE, dtype=torch.float32):
    return pool.take(shape, dtype, torch.device("cpu"))


@pytest.mark.parametrize("holder", ["tensor", "view", "alias", "numpy", "saved for backward"])
def test_memory_still_referenced_is_not_handed_out(holder):
    pool, out = _pool_with_one()
    leaf = torch.ones(SHAPE, requires_grad=True)
    holders = {"tensor": lambda t: t, "view": lambda t: t[1:], "alias": lambda t: t.detach(),
               "numpy": lambda t: t.numpy(), "saved for backward": lambda t: leaf * t}
    held = holders[holder](out)
    del out
    assert _take(pool) is None
    del held
    assert _take(pool) is not None


def test_a_taken_buffer_is_not_handed_out_twice_and_comes_back_when_dropped():
    pool, out = _pool_with_one()
    pointer = out.data_ptr()
    del out
    taken = _take(pool)
    assert taken.data_ptr() == pointer and taken.shape == SHAPE and taken._base is None
    assert _take(pool) is None
    taken.add_(1)  # not a view: in-place use stays allowed
    del taken
    assert _take(pool).data_ptr() == pointer


def test_size_dtype_and_threshold_decide_what_fits():
    pool, out = _pool_with_one()
    del out
    assert _take(pool, dtype=torch.float64) is None
    assert _take(pool, (5, 6)) is None  # larger than the spare
    assert _take(pool, (1, 6)) is None  # under half of it: would waste the rest
    assert _take(pool, (3, 6)).shape == (3, 6)
    big = RecycledOutputs(min_bytes=1 << 20)
    small = torch.empty(SHAPE)
    big.keep(small)
    del small
    assert big.take(SHAPE, torch.float32, torch.device("cpu")) is None


def test_pool_keeps_the_newest_slots_and_skips_parts_of_a_storage():
    pool = RecycledOutputs(slots=2, min_bytes=0)
    first, second, third = (torch.empty(SHAPE) for _ in range(3))
    pointers = {t.data_ptr() for t in (second, third)}
    for kept in (first, second, third):
        pool.keep(kept)
    pool.keep(torch.empty(8, 6)[:4])  # a slice does not own its storage: not kept
    del first, second, third, kept
    taken = [_take(pool), _take(pool)]
    assert {t.data_ptr() for t in taken} == pointers and _take(pool) is None


def test_copies_start_empty_and_threads_never_share_a_buffer():
    pool, out = _pool_with_one()
    del out
    assert _take(copy.deepcopy(pool)) is None and _take(pickle.loads(pickle.dumps(pool))) is None
    got, barrier = [], threading.Barrier(4)

    def grab():
        barrier.wait()
        got.append(_take(pool))

    threads = [threading.Thread(target=grab) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(t is not None for t in got) == 1


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(1, 40), vocab=st.integers(1, 2100), bias=st.booleans(),
       library=st.sampled_from(["onednn", "plain"]))
def test_product_into_existing_memory_is_f_linear(rows, vocab, bias, library, pin_kernels):
    """oneDNN's path goes block by block over the vocabulary (1024 columns): any width, any remainder."""
    pin_kernels(f"linear={library}")
    g = torch.Generator().manual_seed(rows * vocab)
    x, weight = torch.randn(rows, 8, generator=g), torch.randn(vocab, 8, generator=g)
    b = torch.randn(vocab, generator=g) if bias else None
    out = torch.full((rows, vocab), float("nan"))
    assert fast_linear.product_into(out, x, weight, b) is out
    torch.testing.assert_close(out, F.linear(x, weight, b), atol=1e-5, rtol=1e-5)


def _mlm_step(model, inputs, labels, logits_grad=False):
    out = model(**inputs, labels=labels)
    probe = torch.linspace(-1, 1, out.logits.numel()).view(out.logits.shape)
    (out.loss + ((out.logits * probe).sum() if logits_grad else 0)).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return out, grads


@pytest.mark.parametrize("logits_grad", [False, True])
def test_masked_lm_training_reuses_the_logits_memory_without_touching_held_logits(logits_grad):
    """Step 2 writes its logits over step 1's memory only once step 1's outputs are gone; logits a caller
    still holds keep their values; losses and gradients (also with a gradient on the logits themselves, the
    dense backward) equal a model that never recycles."""
    torch.manual_seed(0)
    model = convbert.ConvBertForMaskedLM(convbert.ConvBertConfig(**tiny_config_kwargs())).eval()
    plain = copy.deepcopy(model)
    heads = [m for m in model.modules() if isinstance(m, MaskedLMHead)]
    assert len(heads) == 1
    heads[0]._logits_memory.min_bytes = 0
    next(m for m in plain.modules() if isinstance(m, MaskedLMHead))._logits_memory.slots = 0
    g = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(3):
        ids = torch.randint(5, model.config.vocab_size, (2, 9), generator=g)
        labels = torch.where(torch.rand(ids.shape, generator=g) < 0.4, ids, -100)
        batches.append(({"input_ids": ids}, labels))

    kept, _ = _mlm_step(model, *batches[0])
    kept_logits = kept.logits.detach().clone()
    second, _ = _mlm_step(model, *batches[1])
    pointers = {kept.logits.data_ptr(), second.logits.data_ptr()}
    assert len(pointers) == 2  # step 1's outputs were still held: fresh memory for step 2
    assert torch.equal(kept.logits, kept_logits)
    del kept, second
    pending = model(**batches[0][0], labels=batches[0][1])  # its graph saves the logits until backward
    held, loss = pending.logits.data_ptr(), pending.loss
    del pending
    third, grads = _mlm_step(model, *batches[2], logits_grad)
    assert third.logits.data_ptr() in pointers and third.logits.data_ptr() != held
    loss.backward()
    ref, ref_grads = _mlm_step(plain, *batches[2], logits_grad)
    torch.testing.assert_close(third.logits, ref.logits)
    torch.testing.assert_close(third.loss, ref.loss)
    assert grads.keys() == ref_grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, ref_grads[name], msg=name)
    assert heads[0]._logits_memory._spares
    model.eval()  # evaluation gives the spares' memory back
    assert not heads[0]._logits_memory._spares
