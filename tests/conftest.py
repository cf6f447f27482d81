"""Shared fixtures: tiny configs, a quiet transformers oracle, an isolated registry."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CONVBERT_KERNEL_CACHE", "off")  # measured kernel choices stay in the test process

torch.set_num_threads(min(2, torch.get_num_threads()))


def tiny_config_kwargs(**overrides):
    """A ConvBERT small enough to run in milliseconds; pad id 0 as the released checkpoints."""
    kwargs = dict(
        vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
        embedding_size=16, head_ratio=2, conv_kernel_size=5, num_groups=1, pad_token_id=0,
        max_position_embeddings=40, type_vocab_size=2,
    )
    kwargs.update(overrides)
    return kwargs


def save_random_checkpoints(tmp_path_factory, heads, sizes):
    """task -> a directory holding a seeded random model of that task's class (``heads``: task -> (class,
    config extras)) and the shipped vocabulary's fast tokenizer, as a user's save_pretrained leaves it."""
    from convbert import ConvBertConfig, ConvBertTokenizerFast

    directories = {}
    for seed, (task, (cls, extra)) in enumerate(heads.items()):
        torch.manual_seed(seed)
        directory = tmp_path_factory.mktemp(task)
        cls(ConvBertConfig(**sizes, **extra)).save_pretrained(directory)
        ConvBertTokenizerFast(model_max_length=sizes["max_position_embeddings"]).save_pretrained(directory)
        directories[task] = directory
    return directories


@pytest.fixture
def fresh_registry(monkeypatch):
    """A registry with the built-ins only, discarded after the test."""
    from convbert.registry import Registry

    registry = Registry()
    registry.load_builtins()
    return registry


@pytest.fixture
def batch():
    """A right-padded batch with two segments: (input_ids, attention_mask, token_type_ids)."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 97, (3, 12), generator=g)
    mask = torch.ones(3, 12, dtype=torch.long)
    mask[1, 8:] = 0
    mask[2, 5:] = 0
    ids = ids.masked_fill(mask == 0, 0)
    types = torch.zeros(3, 12, dtype=torch.long)
    types[:, 6:] = 1
    types = types * mask
    return ids, mask, types


@pytest.fixture
def pin_kernels(monkeypatch):
    """``pin_kernels("linear=onednn")``: ``CONVBERT_KERNELS`` for this test; measured choices forgotten."""
    from convbert.kernels import autotune

    def pin(spec: str) -> None:
        monkeypatch.setenv("CONVBERT_KERNELS", spec)
        autotune.reset()

    yield pin
    autotune.reset()


@pytest.fixture
def device():
    """Where the parity tests run: ``CONVBERT_TEST_DEVICE`` (bench/gpu.sh sets ``cuda``), else the CPU."""
    from convbert import settings

    return torch.device(settings.test_device())


def to_device(args: dict, device) -> dict:
    """The tensors of a keyword-argument dict moved to ``device``; other values as they are."""
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in args.items()}


# Files whose tests run training jobs, command-line programs, subprocesses or exporters (seconds each):
# marked `slow`, so `pytest -m "not slow"` is the quick loop while editing; CI runs everything.
SLOW_FILES = {
    "test_cli_fuzz", "test_compile", "test_docs_commands", "test_docs_snippets", "test_export", "test_faults",
    "test_glue",
    "test_plugin_head", "test_plugin_task", "test_plugins", "test_train_cli", "test_train_distributed",
    "test_train_launchers", "test_train_learns", "test_train_resume", "test_train_scale", "test_train_sweep",
    "test_train_wheel", "test_tf1_convert",
}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: runs a training job, a program or an exporter (seconds)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.stem in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
