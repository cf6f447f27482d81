"""The official SQuAD v1.1 / v2.0 JSON files, flattened into the QA task's records.

    {"version": "v2.0", "data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question",
        "answers": [{"text", "answer_start"}], "is_impossible"}]}]}]}

A record is ``{"id", "title", "context", "question", "answers": {"text": [...], "answer_start": [...]}}``
(v2.0's unanswerable questions have no answers). An answer whose ``answer_start`` does not point at its text
in the context is refused with the question's id, since training on it would teach a wrong span.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from convbert.errors import DataError


def is_squad_file(path: str | Path) -> bool:
    """A ``.json`` file (not JSON lines) whose top level holds SQuAD's ``data`` list."""
    path = Path(path)
    if path.suffix != ".json":
        return False
    with open(path, encoding="utf-8") as handle:
        head = handle.read(4096).lstrip()
    return (head.startswith("{") and '"data"' in head) or '"version"' in head


def read_squad_json(path: str | Path) -> list[dict[str, Any]]:
    """Every question of an official SQuAD file, in file order."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: not a SQuAD JSON file ({error}); give train-v2.0.json / dev-v2.0.json as "
                        "released, or JSON lines of flattened records") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise DataError(f"{path}: no top-level 'data' list; not a SQuAD file")
    records: list[dict[str, Any]] = []
    for article in document["data"]:
        for paragraph in article.get("paragraphs", []):
            context = paragraph["context"]
            for qa in paragraph.get("qas", []):
                qid = qa.get("id", f"{len(records)}")
                answers = [] if qa.get("is_impossible") else qa.get("answers", [])
                for answer in answers:
                    start, text = answer.get("answer_start"), answer.get("text", "")
                    if not isinstance(start, int) or context[start:start + len(text)] != text:
                        found = context[start:start + len(text)] if isinstance(start, int) else None
                        raise DataError(f"{path}: question {qid}: answer {text!r} is not at answer_start "
                                        f"{start} of its context (which has {found!r} there); fix the offset "
                                        "or the answer text")
                records.append({"id": qid, "title": article.get("title", ""), "context": context,
                                "question": qa["question"],
                                "answers": {"text": [a["text"] for a in answers],
                                            "answer_start": [a["answer_start"] for a in answers]}})
    if not records:
        raise DataError(f"{path}: no questions")
    return records
