"""Every `convbert-train` and `convbert-prepare` command in README.md and docs/ composes and passes the run's
checks as written.

The commands are read from the documents' code blocks (continuation lines joined, `&&` chains split,
comments dropped). Each is checked as `convbert-train` checks a command line before it starts
(`check_command_line`: Hydra's composition, the schema, the run's plan); a sweep (`-m`) is checked as its
first job. Placeholders (`<checkpoint>`, `$CKPT`, `...`) become a word. What a documented command cannot
find here is the reader's own data (a corpus, a GLUE folder, a checkpoint, a Hub id): such a command passes
when the only thing refused is that file, named by the key the document gives. A documented error
(`$ convbert-train ...` followed by its `convbert-train: error: ...` line) must be the error given.
"""

from __future__ import annotations

import itertools
import re
import shlex
from pathlib import Path

import pytest

from convbert.errors import ConvBertError
from convbert.train.cli import check_command_line

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# What the documents leave to the reader: the error names the key given for it, and the file is not here.
READERS_OWN = ("no such file", "matches no file", "no config.json there", "could not be loaded",
               "train.tsv or", "Hugging Face cache")


def _blocks(text: str) -> list[str]:
    return [body.replace("\\\n", " ") for lang, body in re.findall(r"```([a-z]*)\n(.*?)```", text, re.S)
            if lang != "python"]


def documented_commands() -> list[tuple[str, str]]:
    found = []
    for document in DOCUMENTS:
        for block in _blocks(document.read_text(encoding="utf-8")):
            for line in block.splitlines():
                for part in line.strip().split("&&"):
                    part = part.strip()
                    part = re.sub(r"^torchrun\b.*?-m convbert\.train\b", "convbert-train", part)
                    if part.split(" ", 1)[0] in ("convbert-train", "convbert-prepare"):
                        found.append((document.name, part))
    return found


def documented_errors() -> list[tuple[str, str, str]]:
    found = []
    for document in DOCUMENTS:
        for block in _blocks(document.read_text(encoding="utf-8")):
            lines = block.splitlines()
            for command, output in itertools.pairwise(lines):
                if command.startswith("$ convbert-train ") and output.startswith("convbert-train: error: "):
                    found.append((document.name, command[2:], output.removeprefix("convbert-train: error: ")))
    return found


def as_first_job(command: str) -> list[str]:
    """The command's overrides as its (first) single run: options dropped, placeholders made words."""
    args, out, skip = shlex.split(command, comments=True)[1:], [], False
    if command.startswith("convbert-prepare"):
        from convbert.train.prepare_cli import parse

        args = parse(args)[1]  # its own options (--workers, --verify) are parsed, the rest are overrides
    for arg in args:
        if skip or arg in ("-m", "--multirun"):
            skip = False
            continue
        if arg in ("--cfg", "-c"):
            skip = True
            continue
        key, eq, value = arg.partition("=")
        if eq:
            value = re.sub(r"<[^>]*>|\$\w+|^\.\.\.$", "placeholder", value)
            if "," in value and not value.startswith(("[", "{")):
                value = value.split(",")[0]  # a sweep's first value
            arg = f"{key}={value}"
        out.append(arg)
    return out


COMMANDS = documented_commands()


def test_the_documents_hold_commands() -> None:
    names = {name for name, _ in COMMANDS}
    assert len(COMMANDS) >= 30 and {"README.md", "training.md", "pretraining.md", "glue.md"} <= names


@pytest.mark.parametrize(("document", "command"), COMMANDS, ids=[f"{d}:{c[:60]}" for d, c in COMMANDS])
def test_a_documented_command_composes_and_passes_the_checks(document, command, tmp_path,
                                                             monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = as_first_job(command)
    if any(a.startswith("resume=") for a in args):
        pytest.skip("continues a run directory this test does not have")
    try:
        check_command_line(args)
    except ConvBertError as exc:
        message = str(exc)
        given = [a for a in args if "=" in a and message.startswith(a.split("=", 1)[0])]
        assert given and any(reason in message for reason in READERS_OWN), f"{document}: {command}\n{message}"


@pytest.mark.parametrize(("document", "command", "error"), documented_errors())
def test_a_documented_error_is_the_error_given(document, command, error, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConvBertError) as raised:
        check_command_line(as_first_job(command))
    assert str(raised.value).startswith(error.split("...")[0].rstrip()), (document, str(raised.value))
