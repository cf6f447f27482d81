"""Kernel choices: measured once per shape class, never slower than plain PyTorch, pinned on request."""

from __future__ import annotations

import json
import time

import pytest
import torch
from conftest import tiny_config_kwargs
from torch.nn import functional as F

import convbert
from convbert.errors import ConfigError
from convbert.kernels import autotune
from convbert.kernels import linear as fast_linear

ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "gelu_pytorch_tanh": lambda y: F.gelu(y, approximate="tanh")}


def _sleeper(seconds: float, calls: list[str], name: str):
    def run() -> None:
        calls.append(name)
        time.sleep(seconds)

    return run


def test_plain_wins_ties_and_a_clearly_faster_alternative_wins():
    calls: list[str] = []

    def race(plain: float, alt: float) -> str:
        return autotune.fastest({"plain": _sleeper(plain, calls, "plain"), "alt": _sleeper(alt, calls, "a")})

    assert race(0.01, 0.01) == "plain"
    assert race(0.02, 0.001) == "alt"
    assert race(0.001, 0.02) == "plain"
    assert calls.count("plain") == calls.count("a")  # both measured alike (warm-up + rounds)


def test_a_shape_class_is_measured_once(pin_kernels):
    pin_kernels("")
    measured = []

    def candidates():
        measured.append(1)
        return {"plain": lambda: None, "onednn": lambda: time.sleep(0.002)}

    for rows in (1000, 1024, 513):  # one power-of-two bucket
        assert autotune.pick("linear", ("forward", autotune.rows_class(rows), 8, 8), candidates) == "plain"
    assert len(measured) == 1
    autotune.pick("linear", ("forward", autotune.rows_class(1025), 8, 8), candidates)
    assert len(measured) == 2
    assert autotune.summary() == {"linear": {"plain": 2}}
    assert any(key.startswith("linear ") and "forward 1024 8 8" in key for key in autotune.chosen())


def test_pinned_choices_skip_the_measurement(pin_kernels):
    pin_kernels("linear=onednn,linear_act=plain")

    def never():
        raise AssertionError("a pinned choice must not measure")

    assert autotune.pick("linear", ("forward", 64, 8, 8), never) == "onednn"
    assert autotune.pick("linear_act", ("gelu", 64, 8, 8), never) == "plain"
    assert autotune.chosen() == {}


def test_convbert_onednn_zero_still_means_plain(pin_kernels, monkeypatch):
    pin_kernels("")
    monkeypatch.setenv("CONVBERT_ONEDNN", "0")
    autotune.reset()
    assert autotune.pinned("linear") == "plain" and not fast_linear.available()


@pytest.mark.parametrize("spec", ["linear=mkl", "attention=onednn", "linear", "all=onednn"])
def test_a_wrong_pin_names_the_valid_choices(spec, pin_kernels):
    pin_kernels(spec)
    with pytest.raises(ConfigError, match=r"CONVBERT_KERNELS: .* valid: linear=plain\|onednn"):
        autotune.pinned("linear")


@pytest.mark.skipif(not fast_linear.available(), reason="this PyTorch build has no oneDNN linear")
def test_measured_products_equal_plain_ones_whatever_is_chosen(pin_kernels):
    """Big enough to be measured (not the small-work shortcut); every choice gives F.linear's numbers."""
    pin_kernels("")
    torch.manual_seed(0)
    layer = fast_linear.Linear(128, 256)
    x = torch.randn(4, 32, 128, requires_grad=True)
    out = layer(x)
    out.pow(2).sum().backward()
    ref_x = x.detach().clone().requires_grad_()
    ref = F.linear(ref_x, layer.weight, layer.bias)
    weight = layer.weight.detach().clone().requires_grad_()
    F.linear(ref_x, weight, layer.bias).pow(2).sum().backward()
    assert torch.allclose(out, ref, atol=1e-4)
    assert torch.allclose(x.grad, ref_x.grad, atol=1e-3) and torch.allclose(layer.weight.grad, weight.grad,
                                                                            atol=1e-2)
    kinds = {key.split()[2] for key in autotune.chosen()}
    assert kinds == {"forward", "input_grad", "weight_grad"}
    assert set(autotune.chosen().values()) <= {"plain", "onednn"}


def test_small_products_stay_on_plain_pytorch_without_measuring(pin_kernels):
    pin_kernels("")
    model = convbert.ConvBertModel(convbert.ConvBertConfig(**tiny_config_kwargs()))
    model(input_ids=torch.randint(1, 97, (2, 7))).last_hidden_state.sum().backward()
    assert autotune.chosen() == {}


@pytest.mark.skipif(not fast_linear.available(), reason="this PyTorch build has no oneDNN linear")
@pytest.mark.parametrize("activation", ["gelu", "relu", "gelu_pytorch_tanh"])
@pytest.mark.parametrize("spec", ["linear_act=onednn", "linear_act=plain", ""])
def test_fused_and_unfused_activation_give_the_reference_numbers(activation, spec, pin_kernels):
    """Either way (pinned, or measured on operands big enough to be measured) the output is act(F.linear),
    shaped like the input, and the input is left as it was (the unfused way works in place on its output)."""
    pin_kernels(spec)
    torch.manual_seed(0)
    x, w, b = torch.randn(4, 64, 128), torch.randn(256, 128), torch.randn(256)
    before = x.clone()
    with torch.no_grad():
        out = fast_linear.linear_activation(x, w, b, activation)
    reference = ACTIVATIONS[activation](F.linear(x, w, b))
    assert out is not None and out.shape == (4, 64, 256)
    assert torch.allclose(out, reference, atol=1e-4) and torch.equal(x, before)
    if not spec:
        assert [value for key, value in autotune.chosen().items() if key.startswith("linear_act ")]


@pytest.mark.skipif(not fast_linear.available(), reason="this PyTorch build has no oneDNN linear")
def test_fused_activation_measures_both_ways_and_is_off_in_training(pin_kernels, monkeypatch):
    pin_kernels("")
    timed = []
    real = autotune.fastest

    def spy(candidates, rounds=autotune.ROUNDS):
        timed.append(sorted(candidates))
        return real(candidates, rounds)

    monkeypatch.setattr(autotune, "fastest", spy)
    x, w, b = torch.randn(512, 128), torch.randn(256, 128), torch.randn(256)
    with torch.no_grad():
        fast_linear.linear_activation(x, w, b, "gelu")
    assert ["onednn", "plain"] in timed
    assert fast_linear.linear_activation(x, w, b, "gelu") is None  # grad enabled: training takes its own path
    with torch.no_grad():
        assert fast_linear.linear_activation(x, w, b, "silu") is None


def test_other_devices_and_dtypes_never_leave_plain_pytorch(pin_kernels):
    pin_kernels("linear=onednn")
    x, w = torch.randn(3, 8), torch.randn(4, 8)
    assert fast_linear.eligible(x, w) == fast_linear.available()
    assert not fast_linear.eligible(x.double(), w.double())
    assert not fast_linear.eligible(torch.empty(3, 8, device="meta"), torch.empty(4, 8, device="meta"))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not fast_linear.eligible(x, w)


def test_measured_choices_are_kept_per_machine_and_reused_by_the_next_process(pin_kernels, monkeypatch,
                                                                              tmp_path):
    cache = tmp_path / "kernels.json"
    monkeypatch.setenv("CONVBERT_KERNEL_CACHE", str(cache))
    pin_kernels("")
    measured = []

    def candidates():
        measured.append(1)
        return {"plain": lambda: time.sleep(0.01), "onednn": lambda: None}

    assert autotune.pick("linear", ("forward", 64, 8, 8), candidates) == "onednn"
    entry = json.loads(cache.read_text())[autotune.machine_signature()]
    assert entry["choices"] == {f"linear {torch.get_num_threads()} forward 64 8 8": "onednn"}
    autotune.reset()  # a new process, as far as the choices go
    assert autotune.pick("linear", ("forward", 64, 8, 8), candidates) == "onednn"
    assert len(measured) == 1
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")  # another ISA is another machine
    autotune.reset()
    autotune.pick("linear", ("forward", 64, 8, 8), candidates)
    assert len(measured) == 2 and len(json.loads(cache.read_text())) == 2


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"%s": {"choices": {"linear 2 forward": 3}}}'])
def test_a_damaged_cache_is_measured_again(content, pin_kernels, monkeypatch, tmp_path):
    cache = tmp_path / "kernels.json"
    cache.write_text(content.replace("%s", autotune.machine_signature()))
    monkeypatch.setenv("CONVBERT_KERNEL_CACHE", str(cache))
    pin_kernels("")
    assert autotune.pick("linear", ("forward", 64, 8, 8), lambda: {"plain": lambda: None}) == "plain"
    assert autotune.machine_signature() in json.loads(cache.read_text())


def test_an_unwritable_cache_is_skipped(pin_kernels, monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("CONVBERT_KERNEL_CACHE", str(blocker / "kernels.json"))  # parent is a file
    pin_kernels("")
    assert autotune.pick("linear", ("forward", 64, 8, 8), lambda: {"plain": lambda: None}) == "plain"
