"""The non-CPU path holds no CPU-only kernel: every class trains on the ``meta`` device.

A ``meta`` tensor has a shape and a dtype but no data: a host copy or a Python branch on a tensor's values
fails on it, as it would be wrong (or slow) on CUDA. oneDNN's linear does have a meta kernel, so the ops
dispatched are also recorded and none may be a ``mkldnn`` one. The CUDA numbers themselves come from
bench/gpu.sh, on a machine that has one.
"""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config_kwargs
from torch.utils._python_dispatch import TorchDispatchMode

import convbert
from convbert.kernels import dropout as fast_dropout
from convbert.kernels import linear as fast_linear

CLASSES = ["ConvBertModel", "ConvBertForMaskedLM", "ConvBertForSequenceClassification",
           "ConvBertForTokenClassification", "ConvBertForQuestionAnswering", "ConvBertForMultipleChoice"]


class _RecordOps(TorchDispatchMode):
    """The names of the aten/mkldnn ops dispatched inside the block."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(str(func))
        return func(*args, **(kwargs or {}))


def _inputs(name: str, device: str) -> dict:
    ids = torch.randint(1, 97, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0  # padding: the masked paths, not only the dense ones
    args = {"input_ids": ids, "attention_mask": mask}
    if name == "ConvBertForMultipleChoice":
        args = {k: v.unsqueeze(1).expand(-1, 2, -1).contiguous() for k, v in args.items()}
        args["labels"] = torch.tensor([0, 1, 1])
    elif name == "ConvBertForMaskedLM":
        args["labels"] = torch.where(ids % 3 == 0, ids, -100)
    elif name == "ConvBertForSequenceClassification":
        args["labels"] = torch.tensor([0, 1, 1])
    elif name == "ConvBertForTokenClassification":
        args["labels"] = (ids % 2).masked_fill(mask == 0, -100)
    elif name == "ConvBertForQuestionAnswering":
        args["start_positions"], args["end_positions"] = torch.tensor([1, 2, 3]), torch.tensor([2, 4, 3])
    return {k: v.to(device) for k, v in args.items()}


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("name", CLASSES)
def test_every_class_trains_on_the_meta_device(name, groups):
    torch.manual_seed(0)
    kwargs = tiny_config_kwargs(num_groups=groups, hidden_size=64, intermediate_size=256, num_labels=2)
    with torch.device("meta"):
        model = getattr(convbert, name)(convbert.ConvBertConfig(**kwargs)).train()
    with _RecordOps() as ops:
        out = model(**_inputs(name, "meta"))
        loss = out.loss if getattr(out, "loss", None) is not None else out[0].float().sum()
        loss.backward()
    assert not [op for op in ops.names if "mkldnn" in op], sorted(ops.names)
    assert loss.device.type == "meta"
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(grads) > len(list(model.parameters())) // 2 and all(g.device.type == "meta" for g in grads)
    model.eval()
    with torch.no_grad():
        assert model(**_inputs(name, "meta"))[0].device.type == "meta"


def test_masked_lm_pretraining_step_on_meta_at_a_size_the_cpu_would_measure(monkeypatch):
    """Products large enough that the CPU path would measure oneDNN against MKL; off the CPU it must not.

    Selecting the labelled positions (``nonzero``) has no data-free meta form (on CUDA it is one sync), so
    the meta kernel is told to assume every position labelled.
    """
    from torch.fx.experimental import _config as fx_config

    monkeypatch.setattr(fx_config, "meta_nonzero_assume_all_nonzero", True)
    kwargs = tiny_config_kwargs(hidden_size=256, num_attention_heads=4, intermediate_size=1024,
                                embedding_size=128, max_position_embeddings=128, vocab_size=1000)
    with torch.device("meta"):
        model = convbert.ConvBertForMaskedLM(convbert.ConvBertConfig(**kwargs)).train()
    ids = torch.randint(1, 1000, (8, 128), device="meta")
    with _RecordOps() as ops:
        model(input_ids=ids, labels=ids, logits_at_labels_only=True).loss.backward()
    assert "aten.addmm.default" in ops.names or "aten.mm.default" in ops.names  # the products were seen
    assert not [op for op in ops.names if "mkldnn" in op]


def test_cpu_only_kernels_step_aside_off_the_cpu():
    x, w = torch.empty(512, 256, device="meta"), torch.empty(1024, 256, device="meta")
    assert not fast_linear.eligible(x, w)
    assert not fast_dropout.fast_path(x, 0.1, training=True)
    assert fast_dropout.fast_path(torch.empty(4), 0.1, training=True)  # the CPU keeps it
