"""``convbert-predict`` end to end: JSON lines in, one JSON result per line out, equal to the pipeline's
results; mistakes in the input are one line with file:line and exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import save_random_checkpoints, tiny_config_kwargs

from convbert import (
    ConvBertForMaskedLM,
    ConvBertForQuestionAnswering,
    ConvBertForSequenceClassification,
    ConvBertForTokenClassification,
)
from convbert.cli import predict as predict_cli
from convbert.pipelines import pipeline

ROOT = Path(__file__).resolve().parents[1]
SIZES = tiny_config_kwargs(vocab_size=30522, max_position_embeddings=64, initializer_range=0.2)
HEADS = {
    "fill-mask": (ConvBertForMaskedLM, {}),
    "text-classification": (ConvBertForSequenceClassification, {"id2label": {0: "neg", 1: "pos"}}),
    "token-classification": (ConvBertForTokenClassification,
                             {"id2label": dict(enumerate(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]))}),
    "question-answering": (ConvBertForQuestionAnswering, {}),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return save_random_checkpoints(tmp_path_factory, HEADS, SIZES)


def assert_close(ours, expected) -> None:
    if isinstance(expected, float):
        assert ours == pytest.approx(expected, abs=1e-6)
    elif isinstance(expected, dict):
        assert list(ours) == list(expected)
        for key in expected:
            assert_close(ours[key], expected[key])
    elif isinstance(expected, list):
        assert len(ours) == len(expected)
        for a, b in zip(ours, expected, strict=True):
            assert_close(a, b)
    else:
        assert ours == expected


def predict(capsys, *argv) -> list:
    """Run ``convbert-predict argv`` in this process; the results written to stdout."""
    predict_cli.main([str(a) for a in argv])
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def fails(capsys, *argv) -> str:
    """Run ``convbert-predict argv``, which must exit 2; its one-line message."""
    with pytest.raises(SystemExit) as exit_info:
        predict_cli.main([str(a) for a in argv])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("convbert-predict: error: ") and "\n" not in message, message
    return message


def test_text_classification_json_lines(checkpoints, tmp_path, capsys):
    lines = ['{"text": "A gripping, funny film."}', '"Dull."', "",
             '{"text": "Is it good?", "text_pair": "Yes, very."}']
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    results = predict(capsys, checkpoints["text-classification"], "--input", tmp_path / "in.jsonl",
                      "--batch-size", 2, "--top-k", 2)
    expected = pipeline("text-classification", model=checkpoints["text-classification"]).predict(
        ["A gripping, funny film.", "Dull.", {"text": "Is it good?", "text_pair": "Yes, very."}],
        top_k=2, truncation=True, batch_size=2)
    assert results == expected
    assert [len(r) for r in results] == [2, 2, 2] and {r[0]["label"] for r in results} <= {"neg", "pos"}


def test_plain_text_lines_and_output_file(checkpoints, tmp_path, capsys):
    texts = ["Ada Lovelace lives in London.", "unaffable Zürich", "x"]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n")
    out = tmp_path / "out.jsonl"
    predict_cli.main([str(checkpoints["token-classification"]), "--input", str(tmp_path / "in.txt"),
                      "--output", str(out), "--aggregation-strategy", "first", "--ignore-labels"])
    assert capsys.readouterr().out == ""
    results = [json.loads(line) for line in out.read_text().splitlines()]
    expected = pipeline("token-classification", model=checkpoints["token-classification"]).predict(
        texts, aggregation_strategy="first", ignore_labels=[], batch_size=8)
    assert results == expected
    assert [e["word"] for e in results[1]] in (["unaffable", "zurich"], ["unaffable zurich"])


def test_question_answering_from_stdin_in_a_subprocess(checkpoints):
    context = "ConvBERT was proposed in 2020 by Zihang Jiang and colleagues at Yitu Technology in Singapore."
    records = [{"question": "Who proposed ConvBERT?", "context": context},
               {"question": "When?", "context": context}]
    run = subprocess.run(
        [sys.executable, "-m", "convbert.cli.predict", str(checkpoints["question-answering"]), "--top-k", "2",
         "--max-seq-len", "24", "--doc-stride", "6"],
        input="".join(json.dumps(r) + "\n" for r in records), capture_output=True, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    results = [json.loads(line) for line in run.stdout.splitlines()]
    expected = pipeline("question-answering", model=checkpoints["question-answering"]).predict(
        records, top_k=2, max_seq_len=24, doc_stride=6, batch_size=8)
    assert len(results) == 2
    assert_close(results, expected)  # another process: float sums may differ in the last bits
    for result in results:
        assert all(context[a["start"]:a["end"]] == a["answer"] for a in result)


def test_malformed_line_names_file_and_line_without_traceback(checkpoints, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n\n{"text": "broken"\n')
    run = subprocess.run(
        [sys.executable, "-m", "convbert.cli.predict", str(checkpoints["text-classification"]),
         "--input", str(bad)],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120,
    )
    assert run.returncode == 2
    assert run.stdout == ""
    assert f"convbert-predict: error: {bad}:3: not valid JSON" in run.stderr
    assert "Traceback" not in run.stderr


def test_bad_records_are_user_errors(checkpoints, tmp_path, capsys):
    qa, fill = checkpoints["question-answering"], checkpoints["fill-mask"]
    (tmp_path / "qa.jsonl").write_text('{"question": "Who?", "context": "Ada."}\n{"question": "Who?"}\n')
    assert f"{tmp_path / 'qa.jsonl'}:2: a question-answering line is an object with" \
        in fails(capsys, qa, "--input", tmp_path / "qa.jsonl")
    (tmp_path / "mask.txt").write_text("Paris is the [MASK] of France.\n\nno mask here\n")
    assert f"{tmp_path / 'mask.txt'}:3: no [MASK] token in 'no mask here'" \
        in fails(capsys, fill, "--input", tmp_path / "mask.txt")
    (tmp_path / "types.jsonl").write_text('{"text": 3}\n')
    assert ':1: "text" must be a string' in fails(capsys, fill, "--input", tmp_path / "types.jsonl")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 [MASK]\n".encode("latin-1"))
    assert "latin1.txt:1: not UTF-8" in fails(capsys, fill, "--input", tmp_path / "latin1.txt")
    assert "No such file or directory" in fails(capsys, fill, "--input", tmp_path / "missing.jsonl")
    assert "--aggregation-strategy does not apply to fill-mask" \
        in fails(capsys, fill, "--aggregation-strategy", "simple", "--input", tmp_path / "mask.txt")
    assert "is a ConvBertForMaskedLM checkpoint" in fails(capsys, fill, "--task", "ner")


def test_progress_bar_for_long_inputs(checkpoints, tmp_path, capsys, monkeypatch):
    (tmp_path / "in.txt").write_text("\n".join(f"The [MASK] number {i}." for i in range(6)) + "\n")
    fill = checkpoints["fill-mask"]
    predict(capsys, fill, "--input", tmp_path / "in.txt", "--batch-size", 2, "--top-k", 1)
    assert "convbert-predict" not in capsys.readouterr().err  # short input, no terminal: no bar
    monkeypatch.setattr(predict_cli, "PROGRESS_FROM", 5)
    results = predict_cli.main([str(fill), "--input", str(tmp_path / "in.txt"), "--batch-size", "2"])
    captured = capsys.readouterr()
    assert results is None and len(captured.out.splitlines()) == 6
    assert "convbert-predict: 100%" in captured.err and "6/6" in captured.err


def test_compile_flag_compiles_the_pipelines_model_for_inference(checkpoints, tmp_path, capsys, monkeypatch):
    """``--compile`` hands the loaded model to ``compile_for_inference`` (its real compilation is
    tests/test_compile.py's); the results are the same lines."""
    from convbert import compilation

    compiled = []
    monkeypatch.setattr(compilation, "compile_for_inference", compiled.append)
    (tmp_path / "in.txt").write_text("Dull.\nA gripping film.\n")
    argv = [checkpoints["text-classification"], "--input", tmp_path / "in.txt"]
    plain = predict(capsys, *argv)
    assert not compiled
    assert predict(capsys, *argv, "--compile") == plain
    assert [type(m).__name__ for m in compiled] == ["ConvBertForSequenceClassification"]
