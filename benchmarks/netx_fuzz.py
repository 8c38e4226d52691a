"""What the netx reader does with malformed files: a seeded corpus of files
mutated from lava-dl 0.6.0's four networks (see ``netx_mutations.py``), each
read as ``lavasparse check`` reads it, checked, read as the simulators read it
and run through the emulator on one sample of 4 steps, in a child process with
a memory limit and a timeout. Prints one row per mutation kind: how many files
were accepted, refused with an error naming the file, ended in a traceback
(by exception type), in a message that does not name the file, a timeout,
out of memory, or a crash; and the largest memory a child took.

  .venv/bin/python benchmarks/netx_fuzz.py [--count 1130] [--seed 0] [--json out.json]

It imports whichever lavasparse the interpreter maps (the editable install's
finder in .venv): to measure older code, run it with a venv whose finder
points at a checkout of that code (results/netx-fuzz/README.md says how).
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from pathlib import Path

import netx_mutations as nm   # this folder is on sys.path when the script runs


def table(outcomes: list[nm.Outcome]) -> str:
    """Markdown: per kind, files and outcome counts, and the largest child memory (MB)."""
    kinds = list(nm.KINDS)
    head = ["kind", "files", *nm.OUTCOMES, "peak MB"]
    rows = []
    for kind in kinds + ["all"]:
        sel = [o for o in outcomes if kind == "all" or o.mutant.kind == kind]
        if not sel:
            continue
        counts = collections.Counter(o.outcome for o in sel)
        rows.append([kind, str(len(sel)), *[str(counts.get(k, 0) or "") for k in nm.OUTCOMES],
                     f"{max(o.peak_mb for o in sel):,.0f}"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def failures(outcomes: list[nm.Outcome], per_type: int = 2) -> str:
    """Tracebacks and unnamed messages by exception type, with examples."""
    bad = [o for o in outcomes if o.outcome in ("traceback", "raw message", "timeout", "memory", "crashed")]
    by_type = collections.defaultdict(list)
    for o in bad:
        by_type[(o.outcome, o.exc or "-")].append(o)
    lines = []
    for (outcome, exc), items in sorted(by_type.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"- {outcome}, {exc}: {len(items)}")
        for o in items[:per_type]:
            msg = o.message.replace("\n", " ")[:160]
            lines.append(f"    - {o.mutant.base}, {o.mutant.what} [{o.stage}]: {msg}")
    return "\n".join(lines) or "- none"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=10 * sum(nm.KINDS.values()), help="mutants (default 1130)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per file")
    p.add_argument("--memory-gb", type=float, default=2.0, help="address space a child may add (GiB)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--no-emulate", dest="emulate", action="store_false")
    p.add_argument("--json", help="write every outcome here")
    a = p.parse_args()
    import lavasparse.export.netx_format as reader

    print(f"reader: {reader.__file__}", flush=True)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="netx-fuzz-") as tmp:
        bases = nm.load_bases(Path(tmp) / "bases")
        items = nm.mutants(a.count, a.seed)
        done = [0]

        def progress(o: nm.Outcome) -> None:
            done[0] += 1
            if done[0] % 100 == 0:
                print(f"  {done[0]}/{len(items)} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)

        outcomes = nm.examine_all(items, Path(tmp) / "files", bases, timeout_s=a.timeout,
                                  memory_bytes=int(a.memory_gb * (1 << 30)), jobs=a.jobs, emulate=a.emulate,
                                  progress=progress)
    print(f"{len(outcomes)} files, seed {a.seed}, {time.time() - t0:.0f} s, timeout {a.timeout:g} s, "
          f"memory limit +{a.memory_gb:g} GiB, emulator {'on' if a.emulate else 'off'}\n")
    print(table(outcomes))
    print("\nNot refused cleanly, by outcome and exception type (two examples each):")
    print(failures(outcomes))
    stages = collections.Counter(o.stage for o in outcomes if o.outcome == "refused")
    print(f"\nRefused at: {dict(stages)}")
    if a.json:
        Path(a.json).write_text(json.dumps([
            {"index": o.mutant.index, "kind": o.mutant.kind, "base": o.mutant.base, "what": o.mutant.what,
             "outcome": o.outcome, "exc": o.exc, "stage": o.stage, "message": o.message,
             "seconds": round(o.seconds, 3), "peak_mb": round(o.peak_mb, 1)} for o in outcomes], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
