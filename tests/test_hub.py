"""from_pretrained("org/name"): Hugging Face Hub ids, resolved offline from a cache in huggingface_hub's
layout.

The cache is written here as huggingface_hub writes it (``models--org--name/{blobs,refs,snapshots}``), and
transformers reads the same one, so the layout is the real one. Nothing touches the network.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_config_kwargs
from safetensors.torch import load_file

from convbert import CheckpointError, ConfigError, ConvBertConfig, ConvBertForMaskedLM, ConvBertModel
from convbert.interop.hub import SAFETENSORS_FILES, looks_like_local_path, resolve_pretrained
from convbert.tokenization import ConvBertTokenizer
from convbert.tokenization_fast import ConvBertTokenizerFast

hub = pytest.importorskip("huggingface_hub")
constants = pytest.importorskip("huggingface_hub.constants")

MAIN, V2 = "a1" * 20, "b2" * 20  # commit hashes
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog", "##s"]
IDS = torch.tensor([[2, 5, 6, 7, 8, 5, 9, 3, 0], [2, 11, 12, 7, 3, 0, 0, 0, 0]])
MASK = (IDS != 0).long()


def saved_model(directory: Path, seed: int) -> Path:
    """A tiny ConvBertForMaskedLM and its tokenizer, written by our save_pretrained."""
    torch.manual_seed(seed)
    ConvBertForMaskedLM(ConvBertConfig(**tiny_config_kwargs())).save_pretrained(directory)
    (directory / "vocab.txt").write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    ConvBertTokenizerFast(vocab_file=directory / "vocab.txt").save_pretrained(directory)
    return directory


def put_in_cache(cache: Path, repo_id: str, commit: str, files: dict[str, Path], refs: tuple[str, ...] = ()):
    """Files as huggingface_hub caches them: content-addressed blobs, snapshot links, refs to the commit."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    for name, source in files.items():
        data = source.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    for ref in refs:
        (repo / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return repo / "snapshots" / commit


def with_pickle(directory: Path, out: Path, scale: float) -> Path:
    """``pytorch_model.bin`` holding the directory's weights times ``scale`` (read with weights_only=True)."""
    state = {k: v * scale for k, v in load_file(directory / "model.safetensors").items()}
    torch.save(state, out)
    return out


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    """org/tiny at main (+ a different-valued pytorch_model.bin) and at tag v2 (other weights);
    org/legacy with pytorch_model.bin only; org/bert, another architecture; org/nested, in a subfolder."""
    root = tmp_path_factory.mktemp("hub")
    one, two = saved_model(root / "one", seed=0), saved_model(root / "two", seed=1)
    cache = root / "cache"
    files = {p.name: p for p in one.iterdir()}
    files["pytorch_model.bin"] = with_pickle(one, root / "x.bin", 3.0)
    put_in_cache(cache, "org/tiny", MAIN, files, refs=("main",))
    put_in_cache(cache, "org/tiny", V2, {p.name: p for p in two.iterdir()}, refs=("v2",))
    put_in_cache(cache, "org/legacy", MAIN, {"config.json": one / "config.json",
                                             "pytorch_model.bin": with_pickle(one, root / "y.bin", 1.0)},
                 refs=("main",))
    (root / "bert.json").write_text('{"model_type": "bert", "hidden_size": 32}')
    put_in_cache(cache, "org/bert", MAIN, {"config.json": root / "bert.json",
                                           "model.safetensors": one / "model.safetensors"}, refs=("main",))
    put_in_cache(cache, "org/nested", MAIN, {"encoder/config.json": one / "config.json"}, refs=("main",))
    return {"cache": cache, "one": one, "two": two}


@pytest.fixture(autouse=True)
def offline(monkeypatch, hub_cache):
    """HF_HUB_OFFLINE=1 (read by huggingface_hub at import: the constant too) and the cache as the default."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache["cache"]))


def logits(model, ids=IDS) -> torch.Tensor:
    with torch.no_grad():
        return model(ids, attention_mask=(ids != 0).long()).logits


def test_the_cache_is_in_huggingface_hubs_layout(hub_cache):
    repos = {r.repo_id: r for r in hub.scan_cache_dir(hub_cache["cache"]).repos}
    assert set(repos) == {"org/tiny", "org/legacy", "org/bert", "org/nested"}
    assert {r.commit_hash for r in repos["org/tiny"].revisions} == {MAIN, V2}
    assert hub.try_to_load_from_cache("org/tiny", "config.json", cache_dir=hub_cache["cache"], revision="v2")


def test_model_config_and_tokenizers_load_from_a_hub_id(hub_cache):
    one, cache = hub_cache["one"], hub_cache["cache"]
    from_id = ConvBertForMaskedLM.from_pretrained("org/tiny", cache_dir=cache)
    from_dir = ConvBertForMaskedLM.from_pretrained(one)
    torch.testing.assert_close(logits(from_id), logits(from_dir), rtol=0, atol=0)
    assert from_id.name_or_path == "org/tiny"
    encoder = ConvBertModel.from_pretrained("org/tiny", cache_dir=cache, local_files_only=True,
                                            revision="main")
    with torch.no_grad():
        torch.testing.assert_close(encoder(IDS, attention_mask=MASK).last_hidden_state,
                                   from_dir.convbert(IDS, attention_mask=MASK).last_hidden_state)
    config = ConvBertConfig.from_pretrained("org/tiny", cache_dir=cache, token=None, force_download=False)
    assert config == ConvBertConfig.from_pretrained(one) and config.name_or_path == "org/tiny"
    assert not any(hasattr(config, k) for k in ("cache_dir", "token", "revision", "force_download"))
    for cls in (ConvBertTokenizer, ConvBertTokenizerFast):
        assert cls.from_pretrained("org/tiny")("the cats sat")["input_ids"] == [2, 5, 6, 12, 7, 3]


def test_hub_keywords_are_not_config_overrides(hub_cache):
    _, unused = ConvBertConfig.from_pretrained("org/tiny", revision="v2", return_unused_kwargs=True, foo=1)
    assert unused == {"foo": 1}
    model = ConvBertModel.from_pretrained("org/tiny", revision="v2", local_files_only=True, num_labels=4)
    assert model.config.num_labels == 4 and not hasattr(model.config, "local_files_only")


def test_revision_picks_a_branch_tag_or_commit(hub_cache):
    two = logits(ConvBertForMaskedLM.from_pretrained(hub_cache["two"]))
    for revision in ("v2", V2):
        torch.testing.assert_close(logits(ConvBertForMaskedLM.from_pretrained("org/tiny", revision=revision)),
                                   two, rtol=0, atol=0)
    assert not torch.equal(logits(ConvBertForMaskedLM.from_pretrained("org/tiny")), two)


def test_safetensors_are_preferred_and_a_pickle_is_fetched_only_without_them(hub_cache, monkeypatch):
    calls = []
    real = hub.snapshot_download

    def recording(repo_id, **kwargs):
        calls.append((repo_id, kwargs["allow_patterns"]))
        return real(repo_id, **kwargs)

    monkeypatch.setattr(hub, "snapshot_download", recording)
    model = ConvBertModel.from_pretrained("org/tiny")  # its snapshot also holds a 3x pytorch_model.bin
    expected = load_file(hub_cache["one"] / "model.safetensors")["convbert.embeddings.word_embeddings.weight"]
    torch.testing.assert_close(model.embeddings.word.weight, expected, rtol=0, atol=0)
    assert [patterns for _, patterns in calls] == [["config.json"], ["config.json", *SAFETENSORS_FILES]]
    calls.clear()
    legacy = ConvBertForMaskedLM.from_pretrained("org/legacy")  # no safetensors: the pickle, weights_only
    torch.testing.assert_close(logits(legacy), logits(ConvBertForMaskedLM.from_pretrained(hub_cache["one"])))
    assert [patterns for _, patterns in calls][-1] == ["pytorch_model.bin"]


def test_unknown_ids_and_revisions_name_the_id_and_the_fix(hub_cache):
    offline = r"'org/missing'.*HF_HUB_OFFLINE=1 is set.*run once online"
    with pytest.raises(CheckpointError, match=offline) as err:
        ConvBertModel.from_pretrained("org/missing")
    assert isinstance(err.value, OSError)  # what transformers raises, for code written against it
    assert str(hub_cache["cache"]) in str(err.value)
    with pytest.raises(CheckpointError, match=r"'org/tiny' \(revision 'nope'\).*local_files_only=True"):
        ConvBertConfig.from_pretrained("org/tiny", revision="nope", local_files_only=True)
    with pytest.raises(FileNotFoundError, match="'org/missing'"):  # the tokenizers' error type is kept
        ConvBertTokenizerFast.from_pretrained("org/missing")


def test_a_missing_path_is_still_a_missing_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(hub, "snapshot_download", lambda *a, **k: pytest.fail("a path is not a Hub id"))
    for path in (tmp_path / "nowhere", str(tmp_path / "nowhere"), "./nowhere", "~/nowhere", "a/b/c", "a--b"):
        assert looks_like_local_path(path)
        with pytest.raises(CheckpointError, match="does not exist"):
            ConvBertModel.from_pretrained(path)
    assert not looks_like_local_path("org/name") and not looks_like_local_path("bert-base-uncased")


def test_another_architecture_is_refused_by_name(hub_cache):
    with pytest.raises(ConfigError, match=r"'org/bert' is a 'bert' checkpoint.*ConvBERT checkpoints only"):
        ConvBertModel.from_pretrained("org/bert")


def test_subfolder(hub_cache):
    assert ConvBertConfig.from_pretrained("org/nested", subfolder="encoder") == \
        ConvBertConfig.from_pretrained(hub_cache["one"])
    assert resolve_pretrained(hub_cache["one"].parent, subfolder="one") == hub_cache["one"]


def test_without_huggingface_hub_a_hub_id_names_the_extra(hub_cache, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    with pytest.raises(ConfigError, match=r"needs huggingface_hub: pip install 'convbert\[hub\]'"):
        ConvBertModel.from_pretrained("org/tiny")
    assert ConvBertModel.from_pretrained(hub_cache["one"]).config.name_or_path == str(hub_cache["one"])


def test_transformers_reads_the_same_cache(hub_cache):
    transformers = pytest.importorskip("transformers")
    theirs = transformers.ConvBertForMaskedLM.from_pretrained("org/tiny", revision="v2").eval()
    ours = ConvBertForMaskedLM.from_pretrained("org/tiny", revision="v2")
    torch.testing.assert_close(logits(ours), logits(theirs), rtol=1e-5, atol=1e-5)


def test_init_from_a_hub_id(hub_cache):
    from convbert.train.cli import compose_config
    from convbert.train.job import plan_run
    from convbert.train.tasks import make_task
    from convbert.train.vocabulary import resolve_tokenizer

    plan = plan_run(compose_config(["pretrain=none", "init_from=org/tiny"]))
    snapshot = hub_cache["cache"] / "models--org--tiny" / "snapshots" / MAIN
    assert Path(plan.init) == snapshot and plan.source == f"init_from=org/tiny ({snapshot})"
    assert plan.composition == ConvBertConfig.from_pretrained(hub_cache["one"]).encoder_composition()
    tokenizer, source = resolve_tokenizer("auto", plan.init, 97, corpus=None, saved=Path("unused"))
    assert tokenizer("the cat")["input_ids"] == [2, 5, 6, 3] and source == str(snapshot)
    task = make_task(plan.stages[0].task, tokenizer, path="task")
    module = task.build(plan.composition)
    task.load_init(module, plan.init)
    torch.testing.assert_close(module.convbert.embeddings.word.weight,
                               ConvBertModel.from_pretrained(hub_cache["one"]).embeddings.word.weight)
    with pytest.raises(ConfigError, match=r"init_from='org/missing': .*not .*in the Hugging Face cache"):
        plan_run(compose_config(["pretrain=none", "init_from=org/missing"]))


def test_tensorflow_class_from_a_hub_id(hub_cache):
    pytest.importorskip("tensorflow")
    import importlib

    ctf = importlib.import_module("convbert.tf")
    from_id = ctf.TFConvBertForMaskedLM.from_pretrained("org/tiny", revision="v2")
    from_dir = ctf.TFConvBertForMaskedLM.from_pretrained(hub_cache["two"])
    ids = IDS.numpy()
    assert (from_id(ids, attention_mask=MASK.numpy()).logits.numpy()
            == from_dir(ids, attention_mask=MASK.numpy()).logits.numpy()).all()
    with pytest.raises(CheckpointError, match=r"'org/legacy'.*convbert.tf reads safetensors only"):
        ctf.TFConvBertModel.from_pretrained("org/legacy")
