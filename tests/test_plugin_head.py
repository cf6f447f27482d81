"""A head and a task from a package outside convbert/, with no flat config fields and no edit in convbert/.

The package is written here to a temporary directory with its distribution metadata (an entry point in group
``convbert``), as ``pip install`` would leave it, and imports only from ``convbert.plugin``. Its head is
registered with its params dataclass and module alone. It is trained from the command line on an encoder
Hugging Face can express (``model.layer.norm=post``) and on a ConvBERT one transformers cannot (pre-LN),
saved, reloaded by its model class and by the generic loader, and listed by ``convbert-blocks``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from convbert.registry import reset_default_registry

PACKAGE = {
    "pair_score_plugin/__init__.py": '''
        """A sentence-pair similarity head and task for convbert (a test's third-party package)."""
    ''',
    "pair_score_plugin/head.py": '''
        """The head: the [CLS] state of the pair -> dropout -> dense -> tanh -> one score; MSE loss."""

        from dataclasses import dataclass

        import torch
        from torch import nn

        from convbert.plugin import ConvBertWithHead, SequenceClassifierOutput


        @dataclass
        class PairScoreParams:
            dropout: float = 0.1
            scale: float = 5.0  # scores run from 0 to scale


        class PairScoreHead(nn.Module):
            def __init__(self, params: PairScoreParams, ctx) -> None:
                super().__init__()
                self.scale = params.scale
                self.dropout = nn.Dropout(params.dropout)
                self.dense = nn.Linear(ctx.hidden_size, ctx.hidden_size)
                self.score = nn.Linear(ctx.hidden_size, 1)

            def forward(self, hidden: torch.Tensor, labels: torch.Tensor | None = None):
                x = torch.tanh(self.dense(self.dropout(hidden[:, 0])))
                logits = self.scale * torch.sigmoid(self.score(self.dropout(x)))
                loss = None if labels is None else nn.functional.mse_loss(logits.squeeze(-1), labels.float())
                return SequenceClassifierOutput(loss=loss, logits=logits)


        class PairScoreModel(ConvBertWithHead):
            """The model class of the head (optional: ConvBertWithHead.from_pretrained loads it too)."""

            head_name = "pair_score"
    ''',
    "pair_score_plugin/task.py": '''
        """The task: {"a", "b", "score"} records, a pair per example; metric: the dev MSE."""

        import statistics
        from dataclasses import dataclass, field
        from typing import Any

        import torch

        from convbert.plugin import DataError, Task


        @dataclass
        class PairScoreConfig:
            name: str = "pair_score"
            head: Any = field(default_factory=lambda: {"name": "pair_score"})


        class PairScore(Task):
            """Score how close two sentences are (0..5): the pair's [CLS] state through its head."""

            name = "pair_score"
            config_class = PairScoreConfig
            data_name = "pair_score"
            record_fields = ("a", "b", "score")
            metric = "mse"
            greater_is_better = False
            chance_level = "a regression's chance level: the variance of the training scores"

            @classmethod
            def check_record(cls, record, where, seen):
                super().check_record(record, where, seen)
                if not isinstance(record["score"], (int, float)):
                    raise DataError(f"{where}: score must be a number, got {record['score']!r}")

            def encode(self, records, max_length):
                enc = self.tokenizer([r["a"] for r in records], [r["b"] for r in records], truncation=True,
                                     max_length=max_length)
                return [{"input_ids": ids, "token_type_ids": types, "labels": float(r["score"])}
                        for ids, types, r in zip(enc["input_ids"], enc["token_type_ids"], records)]

            def chance_loss(self, train):
                """A regression's chance level: the MSE of predicting the training mean (their variance)."""
                return statistics.pvariance([f["labels"] for f in train])

            @torch.no_grad()
            def evaluate(self, module, dev, batch_size, device, autocast):
                total = 0.0
                for chunk, batch in self.batches(dev, batch_size, device):
                    with autocast:
                        total += float(module(**batch).loss) * len(chunk)
                mse = total / max(1, len(dev))
                return {"mse": mse, "loss": mse}
    ''',
    "pair_score_plugin/plugin.py": '''
        """Entry point `convbert: pair_score`: the head on the model side, the task on the training side."""

        from pathlib import Path

        from convbert.plugin import hookimpl

        from pair_score_plugin.head import PairScoreHead, PairScoreParams


        @hookimpl
        def convbert_register_blocks(registry):
            registry.register("head", "pair_score", PairScoreHead, PairScoreParams)


        @hookimpl
        def convbert_register_tasks(registry):
            from pair_score_plugin.task import PairScore

            registry.register_task(PairScore)
            registry.add_config_dir(Path(__file__).resolve().parent / "conf")
    ''',
    "pair_score_plugin/conf/task/pair_score.yaml": '''
        # @package _global_
        defaults:
          - _self_
          - override /data: pair_score

        task:
          name: pair_score
          head:
            name: pair_score
    ''',
    "pair_score_plugin/conf/data/pair_score.yaml": '''
        name: pair_score
        train_file: null
        dev_file: null
        max_length: 32
        max_examples: null
        max_dev_examples: null
    ''',
    "pair_score_plugin-0.1.dist-info/METADATA": '''
        Metadata-Version: 2.1
        Name: pair-score-plugin
        Version: 0.1
    ''',
    "pair_score_plugin-0.1.dist-info/entry_points.txt": '''
        [convbert]
        pair_score = pair_score_plugin.plugin
    ''',
}
WORDS = ["the", "a", "cat", "dog", "sat", "ran", "on", "under", "mat", "rug", "big", "small", "red", "blue"]
TINY = ["pretrain=none", "task=pair_score", "model.num_layers=1", "trainer.max_steps=3",
        "trainer.num_threads=1", "trainer.progress=false", "data.max_length=24"]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("site")
    for name, text in PACKAGE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip())
    for split, n in (("train", 24), ("dev", 8)):
        with open(root / f"{split}.jsonl", "w") as f:
            for i in range(n):
                a = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(5))
                b = " ".join(WORDS[(i * 3 + k) % len(WORDS)] for k in range(4))
                f.write(json.dumps({"a": a, "b": b, "score": float(i % 6)}) + "\n")
    return root


def _run(site: Path, module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CONVBERT_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.fixture(scope="module")
def runs(site: Path) -> dict[str, Path]:
    """Two trainings from the command line: Hugging Face's layout (post-LN) and ConvBERT-tiny's (pre-LN)."""
    out = {}
    for name, layout in (("hf_layout", ["model.layer.norm=post"]), ("convbert", [])):
        data = [f"data.train_file={site / 'train.jsonl'}", f"data.dev_file={site / 'dev.jsonl'}"]
        proc = _run(site, "convbert.train", *TINY, *data, *layout, f"hydra.run.dir={name}", cwd=site)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        out[name] = site / name
    return out


@pytest.fixture
def plugin_on_path(site: Path, monkeypatch):
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("CONVBERT_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    reset_default_registry()
    yield
    reset_default_registry()


def test_the_package_names_no_flat_fields_and_convbert_names_no_plugin(site: Path) -> None:
    repo = Path(__file__).resolve().parent.parent
    assert not any("pair_score" in p.read_text() for p in (repo / "convbert").rglob("*.py"))
    text = "".join((site / n).read_text() for n in PACKAGE if n.endswith(".py"))
    assert "config_fields" not in text and "from_config" not in text
    imports = {line.split()[1] for line in text.splitlines()
               if line.startswith(("from convbert", "import convbert"))}
    assert imports == {"convbert.plugin"}


@pytest.mark.parametrize("name", ["hf_layout", "convbert"])
def test_trained_saved_with_the_head_in_config_json(runs: dict[str, Path], name: str) -> None:
    summary = json.loads((runs[name] / "summary.json").read_text())
    assert summary["stages"][-1]["task"] == "pair_score" and summary["metric"] == "mse"
    assert summary["stages"][-1]["model_class"] == "PairScoreModel"
    config = json.loads((runs[name] / "model" / "config.json").read_text())
    assert config["composition"]["head"] == {"name": "pair_score", "dropout": 0.1, "scale": 5.0}
    assert config["architectures"] == ["PairScoreModel"]
    hf_layout = name == "hf_layout"
    assert set(config["composition"]) == ({"head"} if hf_layout else {"head", *summary["composition"]})


def test_hf_layout_keeps_transformers_names_and_the_head_its_own_prefix(runs: dict[str, Path],
                                                                       plugin_on_path) -> None:
    from safetensors.torch import load_file

    from convbert import ConvBertWithHead

    directory = runs["hf_layout"] / "model"
    keys = set(load_file(directory / "model.safetensors"))
    assert "convbert.embeddings.word_embeddings.weight" in keys
    assert {k for k in keys if k.startswith("head.")} == {"head.dense.weight", "head.dense.bias",
                                                          "head.score.weight", "head.score.bias"}
    assert all(k.startswith(("convbert.", "head.")) for k in keys)
    transformers = pytest.importorskip("transformers")
    hf, info = transformers.ConvBertModel.from_pretrained(directory, output_loading_info=True)
    assert sorted(info["unexpected_keys"]) == sorted(k for k in keys if k.startswith("head."))
    assert not info["missing_keys"]
    ours = ConvBertWithHead.from_pretrained(directory)
    ids = torch.tensor([[2, 5, 6, 7, 3, 8, 9, 3]])
    with torch.no_grad():
        torch.testing.assert_close(hf(input_ids=ids).last_hidden_state,
                                   ours.convbert(input_ids=ids).last_hidden_state, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["hf_layout", "convbert"])
def test_reloads_by_its_model_class_and_by_the_generic_loader(runs: dict[str, Path], name: str,
                                                               plugin_on_path) -> None:
    from pair_score_plugin.head import PairScoreModel

    from convbert import ConvBertWithHead

    directory = runs[name] / "model"
    by_class = PairScoreModel.from_pretrained(directory)
    generic = ConvBertWithHead.from_pretrained(directory)
    assert type(generic) is PairScoreModel and generic.head.block_name == "pair_score"
    ids = torch.tensor([[2, 5, 6, 7, 3, 8, 9, 3]])
    types = torch.tensor([[0, 0, 0, 0, 0, 1, 1, 1]])
    with torch.no_grad():
        a = by_class(input_ids=ids, token_type_ids=types, labels=torch.tensor([2.0]))
        b = generic(input_ids=ids, token_type_ids=types)
    assert a.logits.shape == (1, 1) and a.loss is not None
    torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=0)
    state = dict(generic.own_state_dict())
    for key, tensor in PairScoreModel.from_pretrained(directory).own_state_dict().items():
        assert torch.equal(tensor, state[key]), key


def test_listed_with_its_distribution(site: Path) -> None:
    heads = _run(site, "convbert.cli.blocks", "--kind", "head", "--json", cwd=site)
    assert heads.returncode == 0, heads.stderr
    (head,) = [r for r in json.loads(heads.stdout) if r["name"] == "pair_score"]
    assert head["distribution"] == "pair-score-plugin" and head["params"] == {"dropout": 0.1, "scale": 5.0}
    tasks = _run(site, "convbert.cli.blocks", "--kind", "task", cwd=site)
    assert tasks.returncode == 0, tasks.stderr
    assert "pair_score  (task=pair_score; provided by pair-score-plugin 0.1)" in tasks.stdout
    assert "head: pair_score; metric: mse (lower is better); records: a, b, score;" in tasks.stdout


def test_building_the_plugin_head_imports_no_training_code(site: Path) -> None:
    code = textwrap.dedent("""
        import sys
        import convbert
        model = convbert.build_model({"hidden_size": 16, "num_layers": 1,
            "embedding": {"name": "bert", "vocab_size": 50, "max_position_embeddings": 16},
            "layer": {"name": "transformer", "mixer": {"name": "self_attention", "num_heads": 2},
                      "ffn": {"name": "dense", "intermediate_size": 32}},
            "head": {"name": "pair_score"}})
        assert type(model).__name__ == "PairScoreModel", type(model)
        loaded = sorted(m for m in sys.modules if m.startswith(("convbert.train", "pair_score_plugin.task")))
        print(loaded)
        assert not loaded, loaded
    """)
    proc = _run(site, "convbert.cli.blocks", "--kind", "head", cwd=site)  # the plugin is installed
    assert "pair_score" in proc.stdout
    env = {k: v for k, v in os.environ.items() if k != "CONVBERT_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_head_listed_under_plugins_saves_reloads_and_leaves_the_global_registry_alone(
        site: Path, tmp_path: Path, monkeypatch) -> None:
    """`plugins: [module]` in a composition: the model is built by a child of the process-wide registry, and
    config.json keeps the module list beside the head, so the directory reloads."""
    from convbert import ConvBertConfig, ConvBertWithHead, build_model
    from convbert.registry import Registry

    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("CONVBERT_DISABLE_PLUGIN_AUTOLOAD", "1")  # not as an entry point: by `plugins:` only
    reset_default_registry()
    try:
        composition = ConvBertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=4, intermediate_size=32,
                                     max_position_embeddings=24).to_composition()
        model = build_model({**composition, "plugins": ["pair_score_plugin.plugin"],
                             "head": {"name": "pair_score", "scale": 2.0}})
        assert type(model).__name__ == "PairScoreModel" and model.config.hf_compatible
        assert "pair_score" not in Registry.default().specs["head"]
        model.save_pretrained(tmp_path)
        saved = json.loads((tmp_path / "config.json").read_text())["composition"]
        assert saved == {"plugins": ["pair_score_plugin.plugin"],
                         "head": {"name": "pair_score", "dropout": 0.1, "scale": 2.0}}
        again = ConvBertWithHead.from_pretrained(tmp_path)
        assert type(again) is type(model) and again.head.scale == 2.0
        assert "pair_score" not in Registry.default().specs["head"]
        ids = torch.tensor([[2, 5, 6, 7]])
        torch.testing.assert_close(again(input_ids=ids).logits, model.eval()(input_ids=ids).logits)
    finally:
        reset_default_registry()


def test_the_plan_checks_the_save_before_the_first_step(monkeypatch) -> None:
    """plan_run builds every stage's model on the meta device and runs what save_pretrained would, so a
    model that could not be saved is refused before training, not after it."""
    from convbert.errors import CheckpointError
    from convbert.modeling import ConvBertPreTrainedModel
    from convbert.train.cli import compose_config
    from convbert.train.job import plan_run

    calls = []

    def refuse(self, *args, **kwargs):
        calls.append(type(self).__name__)
        raise CheckpointError("no Hugging Face name for: head.extra")

    cfg = compose_config(["pretrain=none", "task=sentiment", "model.num_layers=1", "model.layer.norm=post"])
    plan_run(cfg)  # saves fine
    monkeypatch.setattr(ConvBertPreTrainedModel, "saved_state_dict", refuse)
    with pytest.raises(CheckpointError, match=r"head\.extra"):
        plan_run(cfg)
    assert calls == ["ConvBertForSequenceClassification"]


OLD_STYLE = '''
"""A plugin written against the docs before issue 26: flat config fields for its head, a task registered in
the blocks hook, training names imported from their modules."""

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from convbert.hookspecs import hookimpl
from convbert.outputs import SequenceClassifierOutput
from convbert.train.tasks.base import Task


@dataclass
class OldParams:
    num_labels: int = 2


class OldHead(nn.Module):
    def __init__(self, params, ctx):
        super().__init__()
        self.out = nn.Linear(ctx.hidden_size, params.num_labels)

    def forward(self, hidden, labels=None):
        return SequenceClassifierOutput(logits=self.out(hidden[:, 0]))


@dataclass
class OldTaskConfig:
    name: str = "old_task"
    head: Any = field(default_factory=lambda: {"name": "old_head", "num_labels": 3})


class OldTask(Task):
    name = "old_task"
    config_class = OldTaskConfig
    data_name = "old"


@hookimpl
def convbert_register_blocks(registry):
    registry.register("head", "old_head", OldHead, OldParams, config_fields={"num_labels": "num_labels"},
                      from_config=lambda c: {"num_labels": c.num_labels})
    registry.register_task(OldTask)
'''


def test_a_plugin_written_against_the_old_docs_keeps_working(tmp_path: Path, monkeypatch) -> None:
    from convbert import ConvBertConfig, ConvBertWithHead, build_model
    from convbert.registry import Registry

    (tmp_path / "old_style_plugin.py").write_text(OLD_STYLE)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry()
    registry.load_builtins()
    registry.load_modules(["old_style_plugin"])
    assert registry.task("old_task").task.name == "old_task"
    composition = ConvBertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=4,
                                 intermediate_size=32).to_composition()
    model = build_model({**composition, "head": {"name": "old_head", "num_labels": 3}}, registry=registry)
    assert model.config.num_labels == 3 and model.config.saved_head() is None  # in the flat fields, as before
    model.save_pretrained(tmp_path / "saved")
    again = ConvBertWithHead(ConvBertConfig.from_pretrained(tmp_path / "saved"),
                             composition={**composition, "head": {"name": "old_head", "num_labels": 3}},
                             registry=registry)
    assert again.head.out.out_features == 3
    assert ConvBertConfig.from_pretrained(tmp_path / "saved").head_node("old_head", registry) == {
        "name": "old_head", "num_labels": 3}


def test_fine_tuning_a_released_encoder_with_a_plugin_head_saves(runs: dict[str, Path], site: Path,
                                                                 tmp_path: Path, plugin_on_path) -> None:
    """init_from a base-model checkpoint in Hugging Face's layout (as a released one): the plugin head is
    new, the run saves (encoder in transformers' names, the head under `head.`) and reloads."""
    import shutil

    from safetensors.torch import load_file

    from convbert import ConvBertModel, ConvBertWithHead

    trained = runs["hf_layout"] / "model"
    released = tmp_path / "released"
    ConvBertWithHead.from_pretrained(trained).convbert.save_pretrained(released)
    for file in trained.iterdir():
        if "token" in file.name or file.name == "vocab.txt":
            shutil.copy(file, released / file.name)
    assert ConvBertModel.from_pretrained(released).config.architectures == ["ConvBertModel"]
    data = [f"data.train_file={site / 'train.jsonl'}", f"data.dev_file={site / 'dev.jsonl'}"]
    proc = _run(site, "convbert.train", *[a for a in TINY if not a.startswith("model.")], *data,
                f"init_from={released}", "hydra.run.dir=from_released", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    saved = tmp_path / "from_released" / "model"
    keys = set(load_file(saved / "model.safetensors"))
    assert "convbert.encoder.layer.0.attention.self.query.weight" in keys and "head.score.weight" in keys
    assert type(ConvBertWithHead.from_pretrained(saved)).__name__ == "PairScoreModel"
