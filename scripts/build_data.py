"""Rebuild the data shipped in ``convbert/data`` from pinned PyPI packages (one-off, not run by tests).

    python scripts/build_data.py                  # downloads the packages with pip into a temp dir
    python scripts/build_data.py --downloads DIR  # reuse DIR (pip download is skipped for files present)

Inputs (sha256-checked):

* ``vaderSentiment==3.3.2`` source archive -> ``sentiment/rotten_tomatoes.tsv``;
* ``gensim==4.4.0`` wheel (cp311 manylinux; only its test data is read) -> ``corpus/*.txt.gz``;
* ``allennlp==0.9.0`` wheel (only its test fixtures are read) -> ``derived/*/smoke.jsonl``;
* the cleaned corpus -> the rule-derived ``derived/{token_classification,qa,multiple_choice}``.

Everything is deterministic: choices are made by SHA-256 ordering (``convbert.data.splits``), and gzip
files are written with a zero timestamp. Only the standard library and ``convbert.data`` are needed.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import html
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from convbert.data.datasets import TOKEN_LABELS  # noqa: E402 - needs the sys.path entry above
from convbert.data.splits import stable_key, stable_split  # noqa: E402 - needs the sys.path entry above

PACKAGES: dict[str, tuple[list[str], str, str]] = {
    # name: (pip download arguments, file name, sha256)
    "vader": (
        ["--no-binary", ":all:", "vadersentiment==3.3.2"],
        "vaderSentiment-3.3.2.tar.gz",
        "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
    ),
    "gensim": (
        [
            "--only-binary",
            ":all:",
            "--python-version",
            "3.11",
            "--platform",
            "manylinux_2_28_x86_64",
            "gensim==4.4.0",
        ],
        "gensim-4.4.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
        "91a7fa5e814e7b1bad4b2dffa8d62c1e55410d5cbdf930714c1997ffb4404db8",
    ),
    "allennlp": (
        ["allennlp==0.9.0"],
        "allennlp-0.9.0-py3-none-any.whl",
        "353752e7b78e48c450e27889d80a3000c4a9af34f70ff9091b3031ad01320940",
    ),
}
VADER_MEMBER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
VADER_INNER = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
WIKI_MEMBER = "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
LEE_MEMBER = "gensim/test/test_data/lee_background.cor"
SQUAD_MEMBER = "allennlp/tests/fixtures/data/squad.json"
QUAREL_MEMBER = "allennlp/tests/fixtures/data/quarel.jsonl"

SEED = "convbert-derived-v1"


# --------------------------------------------------------------------------------------------- inputs
def fetch(downloads: Path) -> dict[str, Path]:
    """Download (if absent) and sha256-check the three packages."""
    paths = {}
    for name, (args, filename, digest) in PACKAGES.items():
        path = downloads / filename
        if not path.exists():
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(downloads), *args],
                check=True,
            )
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != digest:
            raise SystemExit(f"{path}: sha256 {actual} != pinned {digest}")
        paths[name] = path
    return paths


def write_text(path: Path, text: str) -> None:
    """Write UTF-8 text, gzip-compressed (level 9, no timestamp or name) when ``path`` ends in .gz."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    if path.suffix == ".gz":
        buffer = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as handle:
            handle.write(data)
        data = buffer.getvalue()
    path.write_bytes(data)
    print(f"wrote {path}: {len(data):,} bytes")


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


# ------------------------------------------------------------------------------------------ sentiment
def build_sentiment(vader_sdist: Path, out: Path) -> None:
    """Copy the movie-review ground truth verbatim, CRLF -> LF."""
    with tarfile.open(vader_sdist) as outer:
        inner_bytes = outer.extractfile(VADER_MEMBER).read()  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        raw = inner.extractfile(VADER_INNER).read()  # type: ignore[union-attr]
    lines = raw.decode("utf-8").split("\r\n")
    assert len(lines) == 10605 and all(line.count("\t") == 2 for line in lines)
    write_text(out / "sentiment" / "rotten_tomatoes.tsv", "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------------- wikitext cleanup
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_REF = re.compile(r"<ref\b[^>/]*/>|<ref\b[^>]*>.*?</ref\s*>", re.DOTALL | re.IGNORECASE)
_DROPPED_ELEMENTS = re.compile(
    r"<(math|gallery|timeline|imagemap|score|syntaxhighlight|source|pre|code|chem|ce|hiero|references|nowiki)"
    r"\b[^>]*>.*?</\1\s*>",
    re.DOTALL | re.IGNORECASE,
)
_SELF_CLOSING = re.compile(r"<(references|nowiki)\b[^>]*/>", re.IGNORECASE)
_TEMPLATE = re.compile(r"\{\{([^{}]*)\}\}")
_TABLE = re.compile(r"\{\|(?:(?!\{\|).)*?\|\}", re.DOTALL)
_LINK = re.compile(r"\[\[([^\[\]]*)\]\]")
_EXTERNAL = re.compile(r"\[(?:https?:|ftp:)?//[^\s\]]*\s*([^\]]*)\]")
_URL = re.compile(r"(?:https?|ftp)://\S+")
_BOLD_ITALIC = re.compile(r"'{2,5}")
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"</?[a-zA-Z][^>]*?/?>")
_HEADING = re.compile(r"(={2,6})\s*(.*?)\s*\1")
_EMPTY_PARENS = re.compile(r"\(\s*[,;:]?\s*\)|\[\s*\]")
_OPEN_PAREN_JUNK = re.compile(r"\(\s*[,;:]\s*")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?)\]])")
_SPACE_AFTER_OPEN = re.compile(r"([(\[])\s+")
_REPEATED_PUNCT = re.compile(r"([,;:])(?:\s*[,;:])+")
_LEFTOVER_MARKUP = re.compile(r"[{}\[\]|<>]|=\s*=|https?:|www\.")

_DROPPED_NAMESPACES = {
    "file",
    "image",
    "category",
    "media",
    "wikipedia",
    "wp",
    "wikt",
    "wiktionary",
    "commons",
    "s",
    "wikisource",
    "q",
    "wikiquote",
    "special",
    "template",
    "help",
    "portal",
    "user",
    "talk",
    "simple",
    "meta",
    "b",
    "n",
    "v",
    "wikibooks",
    "mw",
}
_INTERLANGUAGE = re.compile(r"[a-z]{2,3}(?:-[a-z]+)*")
_JUNK_SECTIONS = {
    "see also",
    "references",
    "external links",
    "further reading",
    "notes",
    "bibliography",
    "sources",
    "footnotes",
    "citations",
    "notes and references",
    "references and notes",
    "gallery",
    "works cited",
    "selected works",
    "filmography",
    "discography",
    "bibliography and further reading",
}
# Templates whose first positional argument is running text.
_TEXT_TEMPLATES = {
    "nowrap",
    "nobr",
    "small",
    "big",
    "sc",
    "smallcaps",
    "mvar",
    "em",
    "strong",
    "abbr",
    "ill",
    "sic",
    "not a typo",
    "linktext",
    "proper name",
    "keypress",
    "var",
    "math",
    "tooltip",
    "vanchor",
    "w",
}
_LITERAL_TEMPLATES = {
    "ndash": "–",
    "mdash": "—",
    "snd": " – ",
    "spaced ndash": " – ",
    "okina": "ʻ",
    "'": "'",
    "nbsp": " ",
    "·": "·",
    "dot": "·",
    "-": "",
    "shy": "",
    "pi": "π",
}


def _expand_template(match: re.Match[str]) -> str:
    """Keep the visible text of a few common inline templates; drop every other template."""
    parts = [part.strip() for part in match.group(1).split("|")]
    name = parts[0].lower().replace("_", " ")
    args = [part for part in parts[1:] if "=" not in part]
    if name in _LITERAL_TEMPLATES:
        return _LITERAL_TEMPLATES[name]
    if name in ("convert", "cvt") and len(args) >= 2:
        if len(args) >= 4 and args[1] in ("and", "to", "-", "–", "or", "by", "x", "×"):
            joiner = "–" if args[1] in ("-", "–") else f" {args[1]} "
            return f"{args[0]}{joiner}{args[2]} {args[3]}"
        return f"{args[0]} {args[1]}"
    if name.startswith("lang-") and args:
        return args[0]
    if name in ("lang", "transl") and len(args) >= 2:
        return args[-1]
    if name in _TEXT_TEMPLATES and args:
        return args[0]
    if name in ("circa", "c.") and args:
        return f"c. {args[0]}"
    return ""


def _resolve_link(match: re.Match[str]) -> str:
    """``[[target|label]]`` -> label (or target); files, categories and interwiki links -> nothing."""
    target, _, label = match.group(1).partition("|")
    target = target.strip().lstrip(":")
    namespace, colon, _ = target.partition(":")
    namespace = namespace.strip()
    if colon and (namespace.lower() in _DROPPED_NAMESPACES or _INTERLANGUAGE.fullmatch(namespace)):
        return ""
    if label:
        return target if label.endswith("|") else label.rsplit("|", 1)[-1]
    return target


def _until_stable(
    pattern: re.Pattern[str], replacement: str | Callable[[re.Match[str]], str], text: str
) -> str:
    """Apply a substitution for innermost constructs until nested ones are gone too."""
    while True:
        new = pattern.sub(replacement, text)
        if new == text:
            return new
        text = new


def _tidy(paragraph: str) -> str:
    """Normalise spaces and remove the empty or dangling brackets that dropped templates leave behind."""
    while True:
        before = paragraph
        paragraph = " ".join(paragraph.split())
        paragraph = _SPACE_AFTER_OPEN.sub(r"\1", paragraph)
        paragraph = _SPACE_BEFORE_PUNCT.sub(r"\1", paragraph)
        paragraph = _REPEATED_PUNCT.sub(r"\1", paragraph)
        paragraph = _EMPTY_PARENS.sub("", paragraph)
        paragraph = _OPEN_PAREN_JUNK.sub("(", paragraph)
        if paragraph == before:
            return paragraph


def wikitext_paragraphs(text: str, min_words: int = 10) -> list[str]:
    """Plain prose paragraphs of one article's wikitext.

    Drops comments, refs, templates, tables, files, categories, interwiki links, math and code,
    headings, lists, and reference-like sections; keeps link labels and bold/italic text. Paragraphs
    that are short, keep markup characters, or do not end like a sentence are dropped.
    """
    text = _COMMENT.sub("", text)
    text = _REF.sub("", text)
    text = _SELF_CLOSING.sub("", text)
    text = _DROPPED_ELEMENTS.sub("", text)
    text = _until_stable(_TEMPLATE, _expand_template, text)
    text = _until_stable(_TABLE, "", text)
    text = _until_stable(_LINK, _resolve_link, text)
    text = _EXTERNAL.sub(r"\1", text)
    text = _URL.sub("", text)
    text = _BOLD_ITALIC.sub("", text)
    text = _BR.sub(" ", text)
    text = _TAG.sub("", text)
    text = html.unescape(text).replace("\xa0", " ")

    blocks: list[str] = []
    current: list[str] = []
    skipping = False
    for line in [*text.split("\n"), ""]:
        stripped = line.strip()
        heading = _HEADING.fullmatch(stripped)
        if heading or not stripped or stripped[0] in "*#:;|!{}=" or skipping:
            if current:
                blocks.append(" ".join(current))
                current = []
            if heading:
                skipping = heading.group(2).lower() in _JUNK_SECTIONS
            continue
        current.append(stripped)
    paragraphs = []
    for block in blocks:
        paragraph = _tidy(block)
        if (
            len(paragraph.split()) >= min_words
            and not _LEFTOVER_MARKUP.search(paragraph)
            and paragraph[-1] in ".!?\"'’”)"
        ):
            paragraphs.append(paragraph)
    return paragraphs


def wikipedia_articles(dump: bytes) -> Iterator[tuple[str, str]]:
    """(title, wikitext) of each main-namespace, non-redirect page of a MediaWiki XML dump."""
    for _, element in ElementTree.iterparse(io.BytesIO(dump)):
        if element.tag.endswith("}page"):
            namespace = element.findtext("{*}ns")
            redirect = element.find("{*}redirect") is not None
            if namespace == "0" and not redirect:
                yield element.findtext("{*}title") or "", element.findtext("{*}revision/{*}text") or ""
            element.clear()


Document = tuple[str, str, list[str]]
"""(source, title, paragraphs)."""


def build_corpus(gensim_wheel: Path, out: Path) -> list[Document]:
    """Write the cleaned Wikipedia sample and the Lee corpus; return their documents for derivation."""
    with zipfile.ZipFile(gensim_wheel) as wheel:
        dump = bz2.decompress(wheel.read(WIKI_MEMBER))
        lee = wheel.read(LEE_MEMBER).decode("utf-8")
    documents: list[Document] = []
    for title, wikitext in wikipedia_articles(dump):
        paragraphs = wikitext_paragraphs(wikitext)
        if paragraphs:
            documents.append(("wikipedia", title, paragraphs))
    for number, line in enumerate(lee.split("\n"), start=1):
        if line.strip():
            # Verbatim apart from whitespace and two HTML italics tags.
            documents.append(
                ("lee", f"Lee background article {number}", [" ".join(_TAG.sub("", line).split())])
            )
    for source, filename in (("wikipedia", "wikipedia.txt.gz"), ("lee", "lee_background.txt.gz")):
        articles = ["\n".join(paragraphs) for src, _, paragraphs in documents if src == source]
        write_text(out / "corpus" / filename, "\n\n".join(articles) + "\n")
    return documents


# ----------------------------------------------------------------------------------------- sentences
_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "st",
    "jr",
    "sr",
    "prof",
    "gen",
    "col",
    "lt",
    "sgt",
    "capt",
    "gov",
    "sen",
    "rep",
    "rev",
    "mt",
    "ft",
    "no",
    "vs",
    "e.g",
    "i.e",
    "cf",
    "ca",
    "c",
    "approx",
    "inc",
    "ltd",
    "co",
    "corp",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "p",
    "pp",
    "vol",
    "ed",
    "fig",
    "al",
    "u.s",
    "u.k",
    "u.n",
    "d.c",
    "a.d",
    "b.c",
    "op",
    "ch",
    "esp",
    "v",
    "brig",
    "maj",
    "adm",
    "cmdr",
    "hon",
    "pres",
    "dept",
    "univ",
    "fl",
    "viz",
    "ibid",
}
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])[\"'’”)]*\s+(?=[\"'“‘(]?[A-Z0-9])")


def split_sentences(paragraph: str) -> list[str]:
    """Rule-based sentence splitter: break after . ! ? before a capital or digit, not after abbreviations."""
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_BREAK.finditer(paragraph):
        candidate = paragraph[start : match.start()].rstrip("\"'’”)")
        last_word = candidate.rsplit(None, 1)[-1] if candidate.split() else ""
        stem = last_word.rstrip(".").lower()
        if stem in _ABBREVIATIONS or re.fullmatch(r"[A-Z]", last_word.rstrip(".")) or "." in stem:
            continue
        sentences.append(paragraph[start : match.end()].strip())
        start = match.end()
    sentences.append(paragraph[start:].strip())
    return [s for s in sentences if s]


# ------------------------------------------------------------------------------------ token labelling
_TOKEN = re.compile(r"(?:[^\W\d_]\.){2,}|\d+(?:[.,:/]\d+)*[^\W\d_]*|\w+(?:['’-]\w+)*|[^\w\s]")


def tokenize(sentence: str) -> list[tuple[str, int, int]]:
    """(token, start, end): initialisms (``U.S.``), numbers (``1,000``, ``1990s``), words (``don't``,
    ``Pierre-Joseph``) and single punctuation marks."""
    return [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(sentence)]


def tag_tokens(tokens: list[str], lowercase_seen: set[str]) -> list[str]:
    """BIO tags: runs of number tokens -> NUM, runs of capitalised words -> CAP, else O.

    A number token starts with a digit. A capitalised word starts with an upper-case letter, except
    the pronoun "I" and a sentence-initial word whose lower-case form occurs elsewhere in the corpus
    (it is capitalised only because it starts the sentence).
    """
    first_word = next((i for i, token in enumerate(tokens) if token[0].isalnum()), -1)
    kinds = []
    for i, token in enumerate(tokens):
        if token[0].isdigit():
            kinds.append("NUM")
        elif (
            token[0].isupper() and token != "I" and not (i == first_word and token.lower() in lowercase_seen)
        ):
            kinds.append("CAP")
        else:
            kinds.append("")
    tags = []
    for i, kind in enumerate(kinds):
        if not kind:
            tags.append("O")
        else:
            tags.append(("I-" if i > 0 and kinds[i - 1] == kind else "B-") + kind)
    return tags


def lowercase_vocabulary(sentences: Iterable[str]) -> set[str]:
    """Every word that occurs in lower case somewhere (deciding sentence-initial capitals)."""
    return {token for sentence in sentences for token, _, _ in tokenize(sentence) if token.islower()}


def spans(tags: list[str]) -> list[tuple[int, int, str]]:
    """(first token, last token + 1, kind) of each BIO span."""
    found: list[tuple[int, int, str]] = []
    for i, tag in enumerate(tags):
        if tag.startswith("B-"):
            found.append((i, i + 1, tag[2:]))
        elif tag.startswith("I-"):
            first, _, kind = found[-1]
            found[-1] = (first, i + 1, kind)
    return found


# --------------------------------------------------------------------------------------- derivations
def _hash_order(items: list[Any], key: Callable[[Any], str], salt: str) -> list[Any]:
    return sorted(items, key=lambda item: stable_key(key(item), f"{SEED}:{salt}"))


def derive_token_classification(sentences: list[str], vocabulary: set[str], count: int) -> dict[str, list]:
    """``count`` real sentences of 8-40 tokens with at least one span, tagged by :func:`tag_tokens`."""
    records = []
    for sentence in _hash_order(sorted(set(sentences)), str, "token-classification"):
        tokens = [token for token, _, _ in tokenize(sentence)]
        if not 8 <= len(tokens) <= 40:
            continue
        tags = tag_tokens(tokens, vocabulary)
        if any(tag != "O" for tag in tags):
            records.append({"tokens": tokens, "tags": tags})
        if len(records) == count:
            break
    splits = stable_split(records, key=lambda r: " ".join(r["tokens"]), seed=SEED)
    for name, items in splits.items():
        for number, record in enumerate(items):
            record_id = {"id": f"tc-{name}-{number:05d}"}
            items[number] = record_id | record
    return splits


def derive_qa(documents: list[Document], vocabulary: set[str], contexts: int) -> dict[str, list]:
    """Cloze QA: a span (capitalised words or a number) of one sentence is blanked out in the question;
    the answer is that span at its position in the context paragraph (3-8 sentences, <= 160 words)."""
    candidates = []
    for source, title, paragraphs in documents:
        for index, paragraph in enumerate(paragraphs):
            sentences = split_sentences(paragraph)
            while len(" ".join(sentences).split()) > 160 and len(sentences) > 3:
                sentences = sentences[:-1]
            context = " ".join(sentences)
            if 3 <= len(sentences) <= 8 and len(context.split()) <= 160:
                candidates.append((source, title, index, context, sentences))
    chosen = _hash_order(candidates, lambda c: c[3], "qa-context")[:contexts]
    splits = stable_split(chosen, key=lambda c: c[3], seed=SEED)
    result: dict[str, list] = {}
    for name, items in splits.items():
        records = []
        for source, title, _index, context, sentences in items:
            cursor = 0
            questions = []
            for sentence in sentences:
                offset = context.index(sentence, cursor)
                cursor = offset + len(sentence)
                tokens = tokenize(sentence)
                tags = tag_tokens([t for t, _, _ in tokens], vocabulary)
                options = [(tokens[a][1], tokens[b - 1][2]) for a, b, _ in spans(tags) if b - a <= 4]
                options = [(a, b) for a, b in options if b - a >= 2]
                if options and len(tokens) >= 6:
                    a, b = _hash_order(options, lambda o, s=sentence: f"{s}:{o}", "qa-span")[0]
                    question = f"{sentence[:a]}_____{sentence[b:]}"
                    questions.append((question, sentence[a:b], offset + a))
            for number, (question, answer, start) in enumerate(
                _hash_order(questions, lambda q: q[0], "qa-question")[:3]
            ):
                assert context[start : start + len(answer)] == answer
                records.append(
                    {
                        "id": f"qa-{name}-{source}-{stable_key(context, SEED)[:10]}-{number}",
                        "title": title,
                        "context": context,
                        "question": question,
                        "answers": {"text": [answer], "answer_start": [start]},
                    }
                )
        result[name] = records
    return result


def derive_multiple_choice(documents: list[Document], items: int) -> dict[str, list]:
    """SWAG-like: given a paragraph's opening sentence(s), pick its true next sentence among 4; the 3
    distractors are sentences at the same position of other paragraphs of the same source and split."""
    candidates = []
    for source, _title, paragraphs in documents:
        for paragraph in paragraphs:
            sentences = split_sentences(paragraph)
            if len(sentences) < 2:
                continue
            cut = 2 if len(sentences[0].split()) < 12 and len(sentences) >= 3 else 1
            context, ending = " ".join(sentences[:cut]), sentences[cut]
            if 5 <= len(ending.split()) <= 45 and len(context.split()) <= 70:
                candidates.append((source, context, ending))
    chosen = _hash_order(candidates, lambda c: c[1], "mc-context")[:items]
    splits = stable_split(chosen, key=lambda c: c[1], seed=SEED)
    result: dict[str, list] = {}
    for name, group in splits.items():
        records = []
        for number, (source, context, ending) in enumerate(group):
            pool = sorted({e for s, _, e in group if s == source and e != ending})
            distractors = _hash_order(pool, lambda e, c=context: f"{c}:{e}", "mc-distractor")[:3]
            label = int(stable_key(context, f"{SEED}:mc-label"), 16) % 4
            choices = [*distractors[:label], ending, *distractors[label:]]
            records.append(
                {
                    "id": f"mc-{name}-{number:05d}",
                    "source": source,
                    "context": context,
                    "choices": choices,
                    "label": label,
                }
            )
        result[name] = records
    return result


# ----------------------------------------------------------------------------------------- smoke sets
def squad_smoke(allennlp_wheel: Path) -> list[dict[str, Any]]:
    """AllenNLP's five real SQuAD v1.1 questions, flattened to one record per question."""
    with zipfile.ZipFile(allennlp_wheel) as wheel:
        squad = json.loads(wheel.read(SQUAD_MEMBER))
    records = []
    for article in squad["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                records.append(
                    {
                        "id": qa["id"],
                        "title": article["title"],
                        "context": paragraph["context"],
                        "question": qa["question"],
                        "answers": {
                            "text": [a["text"] for a in qa["answers"]],
                            "answer_start": [a["answer_start"] for a in qa["answers"]],
                        },
                    }
                )
    return records


def quarel_smoke(allennlp_wheel: Path) -> list[dict[str, Any]]:
    """AllenNLP's three QuaRel questions; the "(A) x (B) y" options become ``choices``."""
    with zipfile.ZipFile(allennlp_wheel) as wheel:
        lines = wheel.read(QUAREL_MEMBER).decode("utf-8").splitlines()
    records = []
    for line in lines:
        item = json.loads(line)
        match = re.fullmatch(r"(.*?)\s*\(A\)\s*(.*?)\s*\(B\)\s*(.*?)\.?", item["question"].strip(), re.DOTALL)
        assert match, item["question"]
        context, first, second = match.groups()
        records.append(
            {
                "id": item["id"],
                "source": "quarel",
                "context": context,
                "choices": [first, second],
                "label": item["answer_index"],
            }
        )
    return records


# -------------------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--downloads", type=Path, help="folder for the downloaded packages (default: temp)")
    parser.add_argument("--out", type=Path, default=ROOT / "convbert" / "data", help="data package folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        downloads = args.downloads or Path(temporary)
        downloads.mkdir(parents=True, exist_ok=True)
        packages = fetch(downloads)
        out: Path = args.out
        build_sentiment(packages["vader"], out)
        documents = build_corpus(packages["gensim"], out)
        sentences = [s for _, _, paragraphs in documents for p in paragraphs for s in split_sentences(p)]
        vocabulary = lowercase_vocabulary(sentences)
        derived = {
            "token_classification": derive_token_classification(sentences, vocabulary, count=2000),
            "qa": derive_qa(documents, vocabulary, contexts=600),
            "multiple_choice": derive_multiple_choice(documents, items=1000),
        }
        derived["qa"]["smoke"] = squad_smoke(packages["allennlp"])
        derived["multiple_choice"]["smoke"] = quarel_smoke(packages["allennlp"])
        for task, splits in derived.items():
            for split, records in splits.items():
                write_jsonl(out / "derived" / task / f"{split}.jsonl.gz", records)
        assert set(TOKEN_LABELS) >= {t for r in derived["token_classification"]["train"] for t in r["tags"]}


if __name__ == "__main__":
    main()
