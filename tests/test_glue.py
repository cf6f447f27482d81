"""The GLUE tasks from files in the GLUE release's exact layouts (headers, columns and quirks written here,
since no GLUE data is reachable offline): reading, two training steps, the official metrics, predictions and
submission files, bad folders and labels."""

from __future__ import annotations

import json
import math

import pytest

from convbert.data.glue import TASKS, read_glue_tsv
from convbert.errors import ConfigError, DataError
from convbert.train.cli import compose_config
from convbert.train.job import run

WORDS = ["the cat sat", "a dog ran home", "it was raining", "two birds sang", "the film was long",
         "he smiled"]


def sentence(i: int) -> str:
    return f"{WORDS[i % len(WORDS)]} \"quoted\" {i}"  # a quote is text: GLUE's files are read without quoting


def rows(task: str, n: int, test: bool = False) -> list[str]:
    """Lines of a GLUE file as the release writes them."""
    out = []
    for i in range(n):
        a, b = sentence(i), sentence(i + 3)
        binary = str(i % 2)
        if task == "cola":
            out.append(f"{i}\t{a}" if test else f"gj04\t{binary}\t{'*' if i % 2 == 0 else ''}\t{a}")
        elif task == "sst2":
            out.append(f"{i}\t{a}" if test else f"{a}\t{binary}")
        elif task == "mrpc":
            first = str(i) if test else binary
            out.append(f"{first}\t{100 + i}\t{200 + i}\t{a}\t{b}")
        elif task == "qqp":
            out.append(f"{i}\t{a}\t{b}" if test else f"{i}\t{2 * i}\t{2 * i + 1}\t{a}\t{b}\t{binary}")
        elif task == "stsb":
            meta = f"{i}\tmain-captions\tMSRvid\t2012test\t{i:04d}"
            score = "" if test else f"\t{(i % 6) * 0.8:.3f}"
            out.append(f"{meta}\tnone\tnone\t{a}\t{b}{score}")
        elif task == "mnli":
            label = ["entailment", "neutral", "contradiction"][i % 3]
            parses = "\t".join(["(x)"] * 4)
            gold = "" if test else f"\t{label}\t{label}"
            out.append(f"{i}\t{i}\t{i}e\tfiction\t{parses}\t{a}\t{b}{gold}")
        else:  # qnli, rte, wnli
            label = {"qnli": ["entailment", "not_entailment"], "rte": ["entailment", "not_entailment"],
                     "wnli": ["0", "1"]}[task][i % 2]
            out.append(f"{i}\t{a}\t{b}" + ("" if test else f"\t{label}"))
    return out


HEADERS = {
    "sst2": ("sentence\tlabel", "index\tsentence"),
    "mrpc": ("\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String",
             "\ufeffindex\t#1 ID\t#2 ID\t#1 String\t#2 String"),
    "qqp": ("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate", "id\tquestion1\tquestion2"),
    "stsb": ("index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore",
             "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2"),
    "mnli": ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
             "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label",
             "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
             "sentence1_parse\tsentence2_parse\tsentence1\tsentence2"),
    "qnli": ("index\tquestion\tsentence\tlabel", "index\tquestion\tsentence"),
    "rte": ("index\tsentence1\tsentence2\tlabel", "index\tsentence1\tsentence2"),
    "wnli": ("index\tsentence1\tsentence2\tlabel", "index\tsentence1\tsentence2"),
}


@pytest.fixture(scope="module")
def glue_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("GLUE")
    for name, task in TASKS.items():
        folder = root / task.folder
        folder.mkdir()
        header, test_header = HEADERS.get(name, (None, "index\tsentence"))
        lines = rows(name, 24)
        if name == "qqp":
            lines.insert(5, "333\t1\t2\tonly one question")  # the release's short rows: skipped
        for file in ("train.tsv", *task.dev_files):
            body = ([header] if header else []) + lines
            (folder / file).write_text("\n".join(body) + "\n", encoding="utf-8")
        for file in task.test_files:
            (folder / file).write_text("\n".join([test_header, *rows(name, 7, test=True)]) + "\n")
    return root


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_reads_its_release_files(glue_dir, name):
    task = TASKS[name]
    records = read_glue_tsv(glue_dir / task.folder / "train.tsv", task)
    assert len(records) == 24, "every row once: headers, byte-order marks and QQP's short rows left out"
    assert records[0]["text"] == sentence(0) and ('"quoted"' in records[0]["text"])
    assert ("text_pair" in records[0]) == (len(task.columns) == 2)
    if task.is_regression:
        assert [r["label"] for r in records[:3]] == [0.0, 0.8, 1.6]
    else:
        assert {r["label"] for r in records} <= set(task.labels) and len({r["label"] for r in records}) >= 2
    test = read_glue_tsv(glue_dir / task.folder / task.test_files[0], task, test=True)
    assert [r["index"] for r in test] == list(range(7)) and "label" not in test[0]


def train_glue(glue_dir, tmp_path, name, *extra):
    overrides = [f"task=glue/{name}", f"data.data_dir={glue_dir}", "pretrain=none", "model.num_layers=1",
                 "model.hidden_size=32", "model.num_heads=2", "model.intermediate_size=64",
                 "model.embedding_size=16", "trainer.max_steps=2", "trainer.batch_size=4",
                 "trainer.progress=false",
                 "tokenizer=bert-base-uncased", "model.embedding.vocab_size=30522", *extra]
    run(compose_config(overrides), tmp_path)
    return json.loads((tmp_path / "summary.json").read_text())


@pytest.mark.parametrize("name", ["cola", "mrpc", "stsb", "mnli"])
def test_a_glue_task_trains_and_reports_its_official_metrics(glue_dir, tmp_path, name):
    summary = train_glue(glue_dir, tmp_path, name)
    dev, task = summary["stages"][-1]["dev"], TASKS[name]
    assert summary["metric"] == task.metrics[0] and set(task.metrics) <= set(dev)
    if name == "mnli":
        assert {"accuracy", "accuracy_mismatched"} <= set(dev)
    if name == "stsb":
        assert -1 <= dev["pearson"] <= 1 or math.isnan(dev["pearson"])
    lines = (tmp_path / "predictions" / "dev.jsonl").read_text().splitlines()
    predictions = [json.loads(line) for line in lines]
    assert [p["index"] for p in predictions] == list(range(24))
    assert {"prediction", "label"} <= set(predictions[0])
    submissions = {"mnli": ["MNLI-m", "MNLI-mm"], "stsb": ["STS-B"], "cola": ["CoLA"], "mrpc": ["MRPC"]}[name]
    for file in submissions:
        lines = (tmp_path / "submission" / f"{file}.tsv").read_text().splitlines()
        assert lines[0] == "index\tprediction" and [line.split("\t")[0] for line in lines[1:]] == \
            [str(i) for i in range(7)]
        values = {line.split("\t")[1] for line in lines[1:]}
        if name == "mnli":
            assert values <= set(task.labels)
        elif name == "stsb":
            assert all(float(v) == float(v) for v in values)
        else:
            assert values <= {"0", "1"}
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    if task.labels:
        assert [config["id2label"][str(i)] for i in range(len(task.labels))] == list(task.labels)
    else:
        assert len(config["id2label"]) == 1, "one output: a regression"


def test_hugging_face_columns_in_json_lines(glue_dir, tmp_path):
    records = [{"premise": sentence(i), "hypothesis": sentence(i + 1), "label": i % 3, "idx": i}
               for i in range(12)]
    file = tmp_path / "mnli.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in records))
    summary = train_glue(glue_dir, tmp_path / "run", "mnli", "data.data_dir=null", f"data.train_file={file}",
                         f"data.dev_file={file}")
    assert "accuracy" in summary["stages"][-1]["dev"]


def test_bad_glue_inputs_name_the_file_and_the_fix(glue_dir, tmp_path):
    from convbert.train.job import plan_run

    with pytest.raises(ConfigError, match=r"glue_task='mnlii': not a GLUE task"):
        plan_run(compose_config(["task=glue/mnli", "task.glue_task=mnlii", f"data.data_dir={glue_dir}"]))
    with pytest.raises(ConfigError, match=r"data.data_dir.*missing"):
        plan_run(compose_config(["task=glue/rte"]))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"no RTE/train.tsv or RTE/dev.tsv there"):
        train_glue(empty, tmp_path / "run", "rte")
    bad = tmp_path / "bad" / "RTE"
    bad.mkdir(parents=True)
    header = "index\tsentence1\tsentence2\tlabel\n"
    (bad / "train.tsv").write_text(f"{header}0\ta\tb\tentailment\n1\ta\tb\tmaybe\n")
    (bad / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n")
    with pytest.raises(DataError, match=r"train.tsv:3: label 'maybe' is not one of RTE's labels"):
        train_glue(bad.parent, tmp_path / "run2", "rte")
    (bad / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\tonly a sentence\n")
    with pytest.raises(DataError, match=r"train.tsv:2: 2 column\(s\).*RTE"):
        train_glue(bad.parent, tmp_path / "run3", "rte")


def test_layerwise_learning_rates_follow_electra(tmp_path):
    from convbert import ConvBertConfig, ConvBertForSequenceClassification
    from convbert.train.loop import make_optimizer
    from convbert.train.schema import TrainerConfig

    model = ConvBertForSequenceClassification(ConvBertConfig(
        vocab_size=50, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=48,
        embedding_size=16))
    optimizer = make_optimizer(model, TrainerConfig(learning_rate=1.0, layerwise_lr_decay=0.5))
    rate = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    names = dict(model.named_parameters())
    # n = 3 layers: head 1, layer 2 (depth 3) 0.5^2, layer 0 (depth 1) 0.5^4, embeddings 0.5^5
    assert rate[id(names["head.classifier.out_proj.weight"])] == 1.0
    assert rate[id(next(p for n, p in names.items() if n.startswith("convbert.layers.2.")))] == 0.25
    assert rate[id(next(p for n, p in names.items() if n.startswith("convbert.layers.0.")))] == 0.0625
    assert rate[id(names["convbert.embeddings.word.weight"])] == 0.03125
    decayed = {id(p) for g in optimizer.param_groups if g["weight_decay"] for p in g["params"]}
    assert id(names["convbert.embeddings.norm.weight"]) not in decayed
    assert id(names["head.classifier.dense.weight"]) in decayed


def sweep(cwd, *overrides):
    import os
    import subprocess
    import sys
    import time

    env = {**os.environ, "CONVBERT_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    tiny = ["model.num_layers=1", "model.hidden_size=32", "model.num_heads=2", "model.intermediate_size=64",
            "model.embedding_size=16", "trainer.max_steps=2", "trainer.batch_size=4",
            "trainer.progress=false",
            "tokenizer=bert-base-uncased", "model.embedding.vocab_size=30522", "hydra.sweep.dir=sweep"]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "convbert.train", "-m", *overrides, *tiny], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done, time.perf_counter() - started


def test_the_glue_sweep_runs_every_task_and_reports_the_glue_score(glue_dir, tmp_path):
    from convbert.train.report import report

    _, seconds = sweep(tmp_path, "experiment=glue", f"data.data_dir={glue_dir}")
    text = report(tmp_path / "sweep")
    for task in TASKS.values():
        assert f"| {task.folder} |" in text
    assert "**GLUE score**" in text and "avg w/o WNLI" in text
    print(f"experiment=glue on the test-format files: {seconds:.1f} s\n{text}")


def test_a_glue_sweep_skips_a_task_the_folder_lacks(glue_dir, tmp_path):
    import shutil

    partial = tmp_path / "GLUE"
    shutil.copytree(glue_dir / "RTE", partial / "RTE")
    done, _ = sweep(tmp_path, "experiment=glue", f"data.data_dir={partial}", "task=glue/rte,glue/wnli")
    assert "skipped" in done.stderr and "WNLI" in done.stderr
    skipped = [p.parent.name for p in (tmp_path / "sweep").rglob("skipped.json")]
    finished = [p.parent.name for p in (tmp_path / "sweep").rglob("summary.json")]
    assert len(skipped) == 1 and len(finished) == 1


def hugging_face_rows(task, records):
    """The records as Hugging Face's ``glue`` dataset has them: its column names, labels as ClassLabel ids."""
    rows = []
    for r in records:
        texts = [r["text"], *([r["text_pair"]] if "text_pair" in r else [])]
        label = r["label"] if task.is_regression else task.labels.index(r["label"])
        rows.append({**dict(zip(task.text_fields, texts, strict=True)), "label": label, "idx": r["index"]})
    return rows


@pytest.mark.parametrize("form", ["jsonl", "csv", "parquet", "datasets"])
@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_reads_hugging_faces_columns_in_every_format(glue_dir, tmp_path, name, form):
    from convbert.tokenization_fast import ConvBertTokenizerFast
    from convbert.train.tasks.glue import Glue, GlueConfig

    task = TASKS[name]
    records = read_glue_tsv(glue_dir / task.folder / "train.tsv", task)
    rows = hugging_face_rows(task, records)
    if form == "jsonl":
        path = tmp_path / "train.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif form == "csv":
        import csv

        path = tmp_path / "train.csv"
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(rows)
        if form == "parquet":
            path = tmp_path / "train.parquet"
            pq.write_table(table, path)
        else:
            path = tmp_path / "train"
            path.mkdir()
            with pa.OSFile(str(path / "data-00000-of-00001.arrow"), "wb") as sink, \
                    pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            files = [{"filename": "data-00000-of-00001.arrow"}]
            (path / "state.json").write_text(json.dumps({"_data_files": files}))
    glue = Glue(GlueConfig(glue_task=name, head={"name": "sequence_classification"}), ConvBertTokenizerFast())
    read = glue.read_user_file(path)
    assert [{k: r[k] for k in ("text", "text_pair", "label") if k in r} for r in read] == \
        [{k: r[k] for k in ("text", "text_pair", "label") if k in r} for r in records]
