"""Fuzzing the command line and the data files: every input either works or gets one clear error.

Random overrides (malformed syntax, wrong types, unknown keys and groups, bad paths) go through the checks
``convbert-train`` runs before Hydra starts; random data files (wrong JSON shapes, wrong label types, empty
and huge lines, invalid UTF-8, a BOM) go through each task's reader. The only failure allowed is a
ConvBertError (which the CLI prints as one line, exit status 2); a file that is accepted must give features
to train on. A few end-to-end runs of the console script check exit status 2 and the absence of a traceback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convbert import settings as convbert_settings
from convbert.errors import ConvBertError, DataError
from convbert.train.cli import check_command_line, compose_config, prepare_overrides
from convbert.train.job import plan_run
from convbert.train.tasks import make_task
from convbert.train.vocabulary import shipped_tokenizer
from convbert.user_errors import user_error_message

# 25 examples per property in the suite; CONVBERT_FUZZ_EXAMPLES=500 for a longer search
FUZZ = settings(max_examples=convbert_settings.fuzz_examples(), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

# -- overrides ---------------------------------------------------------------------------------------------
KEYS = ["trainer.max_steps", "trainer.learning_rate", "trainer.batch_size", "trainer.precision",
        "trainer.device", "model.kernel_size", "model.num_heads", "model.hidden_size", "model.num_layers",
        "model.head_ratio", "model.layer.mixer.name", "data.max_length", "data.train_file", "data.labels",
        "task.head.num_labels", "task.head.name", "seed", "resume", "init_from", "tokenizer",
        "pretrain.trainer.batch_size", "pretrain.data.path", "trainer.lerning_rate", "modle.kernel_size",
        "foo", "+foo", "++model.kernel_size", "hydra.run.dir"]
GROUPS = ["model", "task", "data", "trainer", "pretrain", "experiment", "mixer@model.layer.mixer.parts.conv",
          "ffn@model.layer.ffn", "nonsense"]
OPTIONS = ["convbert_small", "bert_tiny", "sentiment", "pretrain_rtd", "pretrain_mlm", "none", "finetune",
           "conv_variant", "dynamic_conv", "span_conv", "grouped", "token_classification", "nope", ""]
WEIRD = ["[", "]", "{", "}", "${", "${oc.env:NOPE}", "null", "''", "a,b", "1e400", "-1", "0", "nan", "inf",
         "true", "[1,2", "{a: 1}", "x" * 3000, "/nonexistent/file.jsonl", "/dev/null", "/", "é", "\\"]
VALUES = st.one_of(st.integers(-10, 10_000).map(str), st.floats(allow_nan=True).map(repr),
                   st.sampled_from(WEIRD), st.text(max_size=20), st.sampled_from(OPTIONS))
OVERRIDE = st.one_of(
    st.tuples(st.sampled_from(KEYS), VALUES).map("=".join),
    st.tuples(st.sampled_from(GROUPS), st.sampled_from(OPTIONS)).map("=".join),
    st.sampled_from(["~model", "~trainer", "~task.head", "~data", "noequals", "=1", "model.=3", "-x"]),
    st.text(max_size=30),
)


def command_line_check(args: list[str]) -> None:
    """What ``convbert-train ARGS`` checks before it starts Hydra (cli.main)."""
    check_command_line(prepare_overrides(args))


@FUZZ
@given(st.lists(OVERRIDE, min_size=1, max_size=3))
def test_random_overrides_work_or_get_one_clear_error(args):
    try:
        command_line_check(args)
    except Exception as exc:  # what convbert-train reports as one line (exit 2); anything else is a bug
        message = user_error_message(exc)
        assert message is not None and message.strip(), f"not a clear error: {exc!r}"


@pytest.mark.parametrize("args, message", [
    (["trainer.max_steps=["], r"trainer.max_steps=\[: no viable alternative"),
    (["trainer.max_steps=abc"], r"trainer.max_steps: Value 'abc'.*int"),
    (["model=nope"], r"model=nope: no such option of config group 'model'.*convbert_small"),
    (["trainer.lerning_rate=1"], r"Did you mean 'learning_rate'"),
    (["~model"], r"model: no model in the config; choose one with model=<option>"),
    (["~trainer"], r"trainer: missing"),
    (["init_from=/nonexistent"], r"init_from='/nonexistent': no config.json there"),
    (["data.train_file=/nonexistent/train.jsonl"], r"/nonexistent/train.jsonl"),
    (["hydra.run.dir=/dev/null/run"], r"hydra.run.dir=/dev/null/run: /dev/null is a file"),
    (["-m", "model.kernel_size=3,["], r"model.kernel_size=3,\[: mismatched input"),
])
def test_known_mistakes_name_the_key(args, message):
    with pytest.raises(ConvBertError, match=message):
        command_line_check(args)


# -- data files --------------------------------------------------------------------------------------------
VALID = {
    "sentiment": lambda i: {"text": f"a good film number {i}", "label": i % 2},
    "token_classification": lambda i: {"tokens": ["Paris", "is", "big"], "labels": [5, 0, 0]},
    "question_answering": lambda i: {"context": "The cat sat on the mat.", "question": "Where?",
                                     "answers": {"text": ["the mat"], "answer_start": [15]}},
    "multiple_choice": lambda i: {"context": "He went", "choices": ["home", "away"], "label": i % 2},
}
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-3, 3) | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6),
                                                                                      inner, max_size=3),
                           max_leaves=6)


def bad_line(draw, task: str, i: int) -> bytes:
    kind = draw(st.sampled_from(["valid", "field", "drop", "shape", "json", "empty", "huge", "utf8", "bom"]))
    record = VALID[task](i)
    if kind == "field":  # one field replaced by a random JSON value
        record[draw(st.sampled_from(sorted(record)))] = draw(JSON_VALUES)
    elif kind == "drop":
        record.pop(draw(st.sampled_from(sorted(record))))
    elif kind == "shape":
        return json.dumps(draw(JSON_VALUES.filter(lambda v: not isinstance(v, dict)))).encode()
    elif kind == "json":
        return draw(st.sampled_from([b"{", b"nope", b'{"text": }', b"[1,", b"{'single': 'quotes'}"]))
    elif kind == "empty":
        return draw(st.sampled_from([b"", b"   ", b"\t"]))
    elif kind == "huge":
        record[next(iter(record))] = "word " * 40_000 if task != "token_classification" else ["w"] * 40_000
    elif kind == "utf8":
        return draw(st.sampled_from([b"\xff\xfe\x00", b'{"text": "\xc3\x28", "label": 0}', b"\x80abc"]))
    elif kind == "bom":
        return b"\xef\xbb\xbf" + json.dumps(record).encode()
    return json.dumps(record).encode()


@st.composite
def data_file(draw, task: str) -> bytes:
    n = draw(st.integers(0, 6))
    return b"\n".join(bad_line(draw, task, i) for i in range(n))


@pytest.fixture(scope="module")
def tokenizer():
    return shipped_tokenizer()


def features_of(task_option: str, file: Path, tokenizer) -> list:
    stage = plan_run(compose_config([f"task={task_option}", "pretrain=none", f"data.train_file={file}",
                                     f"data.dev_file={file}", "data.max_length=64"])).stages[-1]
    train, _ = make_task(stage.task, tokenizer).features(stage.data)
    return train


@pytest.mark.parametrize("task", sorted(VALID))
@FUZZ
@given(data=st.data())
def test_random_data_files_give_features_or_a_data_error(tmp_path, tokenizer, task, data):
    file = tmp_path / f"{task}.jsonl"
    file.write_bytes(data.draw(data_file(task)))
    option = {"sentiment": "sentiment"}.get(task, task)
    try:
        features = features_of(option, file, tokenizer)
    except DataError as exc:
        assert f"{file}" in str(exc) or "data." in str(exc), f"the error names the file or key: {exc}"
    except ConvBertError:
        pass  # e.g. labels beyond the head's num_labels: a config error naming task.head.num_labels
    else:
        assert features, "an accepted file gives something to train on"


@FUZZ
@given(st.binary(max_size=300) | st.sampled_from([b"", b"\n\n\n", b"\xef\xbb\xbfone line\n", b"\xff" * 50]))
def test_random_corpus_files_give_examples_or_a_data_error(tmp_path, tokenizer, content):
    file = tmp_path / "corpus.txt"
    file.write_bytes(content)
    stage = plan_run(compose_config(["task=pretrain_mlm", "pretrain=none", f"data.path={file}",
                                     "data.max_length=32", "data.dev_fraction=0.5"])).stages[-1]
    try:
        train, _ = make_task(stage.task, tokenizer).features(stage.data)
    except ConvBertError as exc:
        assert str(file) in str(exc) or "data." in str(exc), exc
    else:
        assert train


# -- the issue's table, end to end through the console script -----------------------------------------------
TINY = ["model=bert_tiny", "pretrain=none", "trainer.max_steps=2", "trainer.progress=false",
        "trainer.batch_size=2", "data.max_length=32"]


def write_rows(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_the_issues_bad_inputs_end_to_end(tmp_path):
    """Each row of the issue's table, run as a user runs it (the console script), all at once."""
    words = [{"text": f"great fun {i}" if i % 2 else f"dull mess {i}", "label": ["neg", "pos"][i % 2]}
             for i in range(8)]
    labelled = write_rows(tmp_path / "words.jsonl", words)
    mixed = write_rows(tmp_path / "mixed.jsonl", [{"text": "a", "label": "pos"}, {"text": "b", "label": 1}])
    (tmp_path / "not.jsonl").write_text("this is not JSON\n")
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "binary.txt").write_bytes(bytes(range(256)) * 4)
    cases = {
        "string labels": ([f"data.train_file={labelled}", f"data.dev_file={labelled}"], 0, "dev accuracy"),
        "mixed labels": ([f"data.train_file={mixed}", f"data.dev_file={mixed}"], 2,
                         r"mixed.jsonl:2: label 1 is a number but the earlier labels are names"),
        "not JSON": ([f"data.train_file={tmp_path / 'not.jsonl'}"], 2, r"not.jsonl:1: invalid JSON"),
        "empty file": ([f"data.train_file={tmp_path / 'empty.jsonl'}"], 2,
                       r"empty.jsonl: no train records \(the file is empty\)"),
        "binary corpus": (["task=pretrain_mlm", f"data.path={tmp_path / 'binary.txt'}"], 2,
                          r"binary.txt:2: not UTF-8 \(byte b'\\x80' at offset 128\); save it as UTF-8"),
    }
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    procs = {}
    for name, (args, _, _) in cases.items():
        run_dir = tmp_path / name.replace(" ", "_")
        procs[name] = subprocess.Popen([sys.executable, "-m", "convbert.train", *TINY, *args,
                                        f"hydra.run.dir={run_dir}"],
                                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        _, status, message = cases[name]
        assert proc.returncode == status, f"{name}: {err[-2000:]}"
        assert "Traceback" not in err and "HYDRA_FULL_ERROR" not in err, f"{name}: {err[-2000:]}"
        if status:
            assert err.startswith("convbert-train: error: "), f"{name}: {err}"
            assert err.count("\n") <= 2, f"{name}: one clear error: {err}"
        assert re.search(message, out + err), f"{name}: {out[-500:]} {err[-500:]}"
    config = json.loads((tmp_path / "string_labels" / "model" / "config.json").read_text())
    assert config["id2label"] == {"0": "neg", "1": "pos"}
