"""Run transformers' own ConvBERT tests against convbert's classes, with transformers' classes as the control.

The suite is nobody here's: ``tests/models/convbert/test_{modeling,tokenization}_convbert.py`` and the
fixture they read (``../shared/conformance/transformers/tests``), plus the common mixins of the installed
transformers, which come with its source distribution::

    V=$(python -c "import transformers as t; print(t.__version__)")
    pip download --no-deps --no-binary :all: transformers==$V
    tar xzf transformers-*.tar.gz
    python scripts/transformers_suite.py --transformers-tests transformers-*/tests

Nothing is fetched at run time. The runner lays the files out as transformers' tree expects (links, in a
temporary directory), then runs pytest twice: once with transformers' classes (the control) and once with
``transformers.ConvBert*`` replaced by ours before the test modules import them; nothing else changes.
Only tests that pass on the control count. Three things the source distribution lacks are filled in:

- ``tests/utils/test_configuration_utils.py`` (``config_common_kwargs``, the dict of common config
  arguments ``ConfigTester`` sets; transformers 5's value),
- ``tests/exporters/test_export.py`` and ``tests/generation/test_utils.py`` (``ExportTesterMixin`` and
  ``GenerationTesterMixin``): empty mixins, so the export tests are not run on either side; a checkout of
  transformers' repository at the installed tag has the real ones and then they run,
- ``tests/utils/tiny_model_summary.json`` (the Hub's tiny models the pipeline tests download): empty,
  so the pipeline tests skip on both sides,
- the Hub model ``YituTech/conv-bert-base`` the tokenizer tests start from: an offline Hub cache holding
  its tokenizer files built from the vocabulary convbert ships (bert-base-uncased's WordPiece vocabulary;
  the Hub's copy garbles about 1,900 non-ASCII lines, so the two integration tests expect ``[UNK]`` where
  this one has CJK characters and fail on both sides).

Prints both counts and every test that passes on the control but not on ours with the first line of its
error; ``--json`` writes the same. The table in docs/models.md comes from this script.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONVBERT_FILES = ("models/convbert/test_modeling_convbert.py",
                  "models/convbert/test_tokenization_convbert.py", "fixtures/sample_text.txt")
CLASSES = ("ConvBertConfig", "ConvBertTokenizer", "ConvBertTokenizerFast", "ConvBertModel",
           "ConvBertForMaskedLM", "ConvBertForSequenceClassification", "ConvBertForMultipleChoice",
           "ConvBertForTokenClassification", "ConvBertForQuestionAnswering")
STAND_INS = {
    "utils/test_configuration_utils.py": '''config_common_kwargs = {
    "return_dict": False,
    "output_hidden_states": True,
    "output_attentions": True,
    "dtype": "float16",
    "chunk_size_feed_forward": 5,
    "architectures": ["BertModel"],
    "id2label": {0: "label"},
    "label2id": {"label": "0"},
    "problem_type": "regression",
}
''',
    "exporters/test_export.py": "class ExportTesterMixin:\n    pass\n",
    "generation/test_utils.py": "class GenerationTesterMixin:\n    pass\n",
    "utils/tiny_model_summary.json": "{}\n",
}
# test_pipeline_mixin.py re-executes transformers/__init__.py (direct_transformers_import), which puts a
# fresh module in sys.modules: import it first, then substitute, so every later `from transformers import`
# sees ours.
SUBSTITUTE = '''import tests.test_pipeline_mixin  # noqa: F401
import transformers
import convbert

_ORIGINALS = {{name: getattr(transformers, name) for name in {names!r}}}
for _name in _ORIGINALS:
    setattr(transformers, _name, getattr(convbert, _name))


def pytest_collection_finish(session):
    """The test modules hold ours now; transformers' own lookups (AutoTokenizer ...) stay transformers'."""
    for name, cls in _ORIGINALS.items():
        setattr(transformers, name, cls)
'''
HUB_MODEL = "YituTech/conv-bert-base"


def lay_out(tree: Path, transformers_tests: Path, convbert_tests: Path, ours: bool) -> Path:
    """transformers' tests/ layout: the common files linked, ConvBERT's two files and the fixture."""
    tests = tree / "tests"
    tests.mkdir(parents=True)
    for item in transformers_tests.iterdir():
        if item.name not in ("models", "fixtures", "conftest.py"):
            (tests / item.name).symlink_to(item.resolve())
    for rel in CONVBERT_FILES:
        (tests / rel).parent.mkdir(parents=True, exist_ok=True)
        (tests / rel).symlink_to((convbert_tests / rel).resolve())
    for rel, text in STAND_INS.items():
        if not (transformers_tests / rel).exists():
            (tests / rel).parent.mkdir(parents=True, exist_ok=True)
            (tests / rel).write_text(text)
    for folder in {p.parent for p in tests.rglob("*.py")} | {tests, tests / "models"}:
        if not (folder / "__init__.py").exists():
            (folder / "__init__.py").write_text("")
    # test_pipeline_mixin.py imports transformers from tests/../src/transformers: the installed package.
    import transformers

    (tree / "src").mkdir()
    (tree / "src" / "transformers").symlink_to(Path(transformers.__file__).resolve().parent)
    # conftest.py runs before pytest imports the test modules, so their `from transformers import ConvBert*`
    # binds ours.
    control = SUBSTITUTE.split("import transformers")[0]  # the same re-import, no substitution
    (tree / "conftest.py").write_text(SUBSTITUTE.format(names=CLASSES) if ours else control)
    return tests


def offline_hub(home: Path) -> None:
    """A Hub cache holding the tokenizer files of YituTech/conv-bert-base, for HF_HUB_OFFLINE runs."""
    from convbert.tokenization import default_vocab_file

    repo = home / "hub" / ("models--" + HUB_MODEL.replace("/", "--"))
    revision = "0" * 40
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    shutil.copy(default_vocab_file(), snapshot / "vocab.txt")
    config = {"model_type": "convbert", "architectures": ["ConvBertModel"]}
    (snapshot / "config.json").write_text(json.dumps(config))
    (snapshot / "tokenizer_config.json").write_text(json.dumps(
        {"do_lower_case": True, "model_max_length": 512, "tokenizer_class": "ConvBertTokenizer"}))


def run(transformers_tests: Path, convbert_tests: Path, ours: bool, pytest_args: list[str]) -> dict[str, str]:
    """{test id: "passed" | "skipped" | first line of the failure} for one side."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        tests = lay_out(tree, transformers_tests, convbert_tests, ours)
        home = Path(tmp) / "hf_home"
        offline_hub(home)
        report = Path(tmp) / "report.xml"
        env = dict(os.environ, HF_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                   PYTHONPATH=os.pathsep.join([str(tree), str(REPO), os.environ.get("PYTHONPATH", "")]))
        cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--rootdir", str(tree),
               f"--junitxml={report}", "-o", "junit_family=xunit1",
               str(tests / "models" / "convbert"), *pytest_args]
        subprocess.run(cmd, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return parse(report)


def parse(report: Path) -> dict[str, str]:
    results = {}
    for case in ET.parse(report).iter("testcase"):
        name = case.get("classname", "").rsplit(".", 1)[-1] + "::" + case.get("name", "")
        outcome = "passed"
        for child in case:
            if child.tag == "skipped":
                outcome = "skipped"
            elif child.tag in ("failure", "error"):
                message = (child.get("message") or child.text or child.tag).strip().splitlines()
                outcome = (message[0] if message else child.tag)[:200]
        results[name] = outcome
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transformers-tests", type=Path, required=True,
                        help="tests/ of transformers' source distribution (or a checkout), installed version")
    parser.add_argument("--convbert-tests", type=Path,
                        default=REPO.parent / "shared" / "conformance" / "transformers" / "tests",
                        help="the folder holding models/convbert/ and fixtures/ (default: %(default)s)")
    parser.add_argument("--json", type=Path, help="write the per-test outcomes of both sides here")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --), e.g. -k config")
    args = parser.parse_args(argv)
    for folder, probe in ((args.transformers_tests, "test_modeling_common.py"),
                          (args.convbert_tests, CONVBERT_FILES[0])):
        if not (folder / probe).exists():
            parser.error(f"{folder} has no {probe}; this script's docstring says where the files come from")

    import transformers

    control = run(args.transformers_tests, args.convbert_tests, ours=False, pytest_args=args.pytest_args)
    ours = run(args.transformers_tests, args.convbert_tests, ours=True, pytest_args=args.pytest_args)
    counted = sorted(t for t, outcome in control.items() if outcome == "passed")
    passing = [t for t in counted if ours.get(t) == "passed"]
    failing = {t: ours.get(t, "not collected") for t in counted if ours.get(t) != "passed"}
    for area in ("modeling", "tokenization"):
        n = [t for t in counted if ("Tokeniz" in t.split("::")[0]) == (area == "tokenization")]
        print(f"{area:12s}: {sum(t in passing for t in n)} of {len(n)}")
    print(f"transformers {transformers.__version__}: {len(passing)} of the {len(counted)} tests that pass on "
          f"transformers' classes pass on convbert's ({len(control)} collected)")
    for test, why in failing.items():
        print(f"  FAIL {test}: {why}")
    if args.json:
        args.json.write_text(json.dumps({"transformers": transformers.__version__, "control": control,
                                         "ours": ours, "counted": len(counted), "passing": len(passing)},
                                        indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
