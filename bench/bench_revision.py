"""One function or class of ours against its version at an earlier git revision, in the model's step.

A change to one piece (say the masked-LM loss) is best judged inside the whole step, interleaved with the
old piece in the same process: comparing two full benchmark runs mixes the change with the host's drift.
Two copies of our ConvBERT-small masked LM share a checkpoint; before each step the attribute is set to the
current or to the old object (the module file read with ``git show REV:path``), so only that piece differs
(several attributes, e.g. two constants, are swapped together).

    python bench/bench_revision.py --against fe5adb2 --attr convbert.heads.masked_lm:_DecoderCrossEntropy
    python bench/bench_revision.py --against 242eb23 --modes mlm \
        --attr convbert.heads.masked_lm:_CHUNK_ELEMENTS convbert.heads.masked_lm:_GRAD_CHUNK_ELEMENTS
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python bench/bench_revision.py ...   # the AVX2 family

The old module is executed as a separate module, so it must not rely on being the one imported elsewhere.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import machine
import measure
import workloads
from workloads import Workload

HERE = Path(__file__).resolve().parent


def old_object(revision: str, module_name: str, attr: str):
    """``module_name.attr`` as it was at ``revision``."""
    module = importlib.import_module(module_name)
    path = Path(module.__file__).resolve().relative_to(HERE.parent)
    source = subprocess.run(["git", "-C", str(HERE.parent), "show", f"{revision}:{path.as_posix()}"],
                            check=True, capture_output=True, text=True).stdout
    name = f"_at_{revision}_{module_name.replace('.', '_')}"
    file = Path(tempfile.mkdtemp()) / f"{name}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(name, file)
    old = importlib.util.module_from_spec(spec)
    sys.modules[name] = old  # dataclasses and pickling look the module up by name
    spec.loader.exec_module(old)
    return getattr(old, attr)


def main(argv: list[str] | None = None) -> None:
    p = machine.step_parser(__doc__)
    p.add_argument("--against", required=True, help="git revision holding the old version")
    p.add_argument("--attr", required=True, nargs="+", metavar="MODULE:NAME",
                   help="e.g. convbert.heads.masked_lm:_Loss; several are swapped together")
    p.add_argument("--config", default="small", choices=list(workloads.CONFIGS))
    p.add_argument("--modes", nargs="+", default=["mlm", "pretrain"], choices=workloads.MODES)
    args = machine.start(p, argv)
    names = [tuple(a.split(":")) for a in args.attr]
    modules = {m: importlib.import_module(m) for m, _ in names}
    versions = {"current": {(m, a): getattr(modules[m], a) for m, a in names},
                args.against: {(m, a): old_object(args.against, m, a) for m, a in names}}
    shown = ", ".join(f"`{m}.{a}`" for m, a in names)
    print(f"{shown} now against at {args.against}; {args.config}, batch {args.batch}, fp32, "
          f"median of {args.reps} interleaved steps.\n")
    print(f"| L | mode | current s | {args.against} s | current speed-up |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for length in args.lengths:
            path = workloads.checkpoint(tmp, args.config, length)
            for mode in args.modes:
                work = Workload(args.config, length, args.batch, "fp32", mode)
                steps = {}
                for name, objects in versions.items():
                    step = workloads.make_step("ours", workloads.load("ours", path), work)

                    def run(step=step, objects=objects) -> None:
                        for (m, a), obj in objects.items():
                            setattr(modules[m], a, obj)
                        step()

                    steps[name] = run
                timed = measure.interleaved(steps, args.reps, warmup=2)
                times = {n: measure.median(t) for n, t in timed.items()}
                for (m, a), obj in versions["current"].items():
                    setattr(modules[m], a, obj)
                print(f"| {length} | {mode} | {times['current']:.3f} | {times[args.against]:.3f} | "
                      f"**{times[args.against] / times['current']:.2f}x** |", flush=True)


if __name__ == "__main__":
    main()
