"""SQuAD v1.1 / v2.0 from the official JSON files: reading, training with unanswerable questions, the official
v2.0 scores (checked on cases worked by hand from evaluate-v2.0.py's definitions), and the files it reads."""

from __future__ import annotations

import json

import pytest

from convbert.data.squad import read_squad_json
from convbert.errors import DataError
from convbert.train import metrics
from convbert.train.cli import compose_config
from convbert.train.job import run

CONTEXTS = ["The Eiffel Tower was finished in 1889 in Paris by the company of Gustave Eiffel.",
            "Marie Curie won the Nobel Prize in Physics in 1903 and in Chemistry in 1911.",
            "The Amazon river flows through Brazil, Peru and Colombia into the Atlantic Ocean."]
QUESTIONS = [[("When was the tower finished?", "1889"), ("Who built the bridge?", None)],
             [("What did Curie win?", "the Nobel Prize"), ("When did Curie die?", None)],
             [("Into which ocean does the Amazon flow?", "the Atlantic Ocean"),
              ("How long is the Nile?", None)]]


def squad_file(path, version="v2.0", repeat=4):
    data = []
    for n in range(repeat):
        paragraphs = []
        for c, (context, questions) in enumerate(zip(CONTEXTS, QUESTIONS, strict=True)):
            qas = []
            for q, (question, answer) in enumerate(questions):
                if answer is None and version == "v1.1":
                    continue
                gold = [] if answer is None else [{"text": answer, "answer_start": context.index(answer)}]
                qa = {"id": f"{n}-{c}-{q}", "question": question, "answers": gold}
                if version == "v2.0":
                    qa["is_impossible"] = answer is None
                qas.append(qa)
            paragraphs.append({"context": context, "qas": qas})
        data.append({"title": f"article {n}", "paragraphs": paragraphs})
    path.write_text(json.dumps({"version": version, "data": data}))
    return path


def test_the_official_files_read_into_records(tmp_path):
    records = read_squad_json(squad_file(tmp_path / "train-v2.0.json"))
    assert len(records) == 24 and records[0]["answers"] == {"text": ["1889"], "answer_start": [33]}
    assert records[1]["answers"] == {"text": [], "answer_start": []}
    bad = json.loads((tmp_path / "train-v2.0.json").read_text())
    bad["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 30
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(DataError, match=r"question 0-0-0: answer '1889' is not at answer_start 30"):
        read_squad_json(tmp_path / "bad.json")


def test_squad_v2_scores_follow_the_official_definitions():
    answers = {"a": ["Paris", "in Paris"], "b": [], "c": ["1889"], "d": []}
    predictions = {"a": "Paris", "b": "", "c": "1890", "d": "the tower"}
    odds = {"a": -3.0, "b": 2.0, "c": 0.5, "d": -1.0}
    scores = metrics.squad_v2(predictions, odds, answers)
    # raw exact: a 1, b 1 (no answer, none predicted), c 0, d 0 (answered an unanswerable question)
    assert scores["exact"] == 50.0 and scores["HasAns_exact"] == 50.0 and scores["NoAns_exact"] == 50.0
    # thresholds, lowest odds first, starting from "all no answer" (2 right): a +1 (3, at -3.0), d -1 (2),
    # c +0 (2), b 0 (2): the best is 3 of 4 at -3.0
    assert scores["best_exact"] == 75.0 and scores["best_exact_thresh"] == -3.0
    # na_prob_thresh: a question whose odds exceed it counts as "no answer"
    assert metrics.squad_v2(predictions, odds, answers, threshold=0.0)["exact"] == 50.0  # b right, c wrong
    assert metrics.squad_v2({"x": "red car"}, {"x": 0.0}, {"x": ["a red car"]})["f1"] == 100.0


@pytest.mark.parametrize("version", ["v1.1", "v2.0"])
def test_squad_trains_from_the_official_files_and_writes_what_the_official_script_reads(tmp_path, version):
    train, dev = squad_file(tmp_path / f"train-{version}.json", version), squad_file(tmp_path / "dev.json",
                                                                                      version, repeat=1)
    overrides = ["task=question_answering", "pretrain=none", f"data.train_file={train}",
                 f"data.dev_file={dev}", "model.num_layers=1", "model.hidden_size=32", "model.num_heads=2",
                 "model.intermediate_size=64",
                 "model.embedding_size=16", "trainer.max_steps=2", "trainer.batch_size=4",
                 "trainer.progress=false", "tokenizer=bert-base-uncased", "model.embedding.vocab_size=30522",
                 "data.max_length=48", "task.doc_stride=8", "task.max_question_length=12"]
    run(compose_config(overrides), tmp_path / "run")
    dev_metrics = json.loads((tmp_path / "run" / "summary.json").read_text())["stages"][-1]["dev"]
    predictions = json.loads((tmp_path / "run" / "predictions.json").read_text())
    questions = [r["id"] for r in read_squad_json(dev)]
    assert sorted(predictions) == sorted(questions)
    if version == "v2.0":
        assert {"HasAns_f1", "NoAns_f1", "best_f1", "best_f1_thresh"} <= set(dev_metrics)
        odds = json.loads((tmp_path / "run" / "null_odds.json").read_text())
        assert sorted(odds) == sorted(questions)
        gold = {r["id"]: r["answers"]["text"] for r in read_squad_json(dev)}
        rescored = metrics.squad_v2(predictions, odds, gold)
        assert rescored["f1"] / 100 == pytest.approx(dev_metrics["f1"])
    else:
        assert not (tmp_path / "run" / "null_odds.json").exists() and "HasAns_f1" not in dev_metrics
