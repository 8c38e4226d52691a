"""lavasparse deploy: a netx file on Lava's Loihi 2 simulator (fixed_pt)."""
from __future__ import annotations

import sys

from lavasparse.deploy.lava_runner import (check_input, check_readout_silent, load_input, load_labels, run_on_lava,
                                           saved_arrays)
from lavasparse.deploy.resources import check_network
from lavasparse.export.netx_format import read_network
from lavasparse.fileio import write_npz

from ._target import note_input_transform


def run(a) -> int:
    desc = read_network(a.net)
    x = check_input(load_input(a.input, a.layout), desc, origin=a.input)
    note_input_transform(desc, x.values)
    labels = load_labels(a.labels, len(x)) if a.labels else None
    report = check_network(desc)
    if not report.fits:
        problems = "\n  - ".join(str(v) for v in report.violations)
        if not a.ignore_limits:
            raise ValueError(f"{a.net} does not fit Loihi 2 (lavasparse check says why):\n  - {problems}\n"
                             f"--ignore-limits runs it in the simulator anyway")
        print(f"warning: {a.net} does not fit Loihi 2; running anyway (--ignore-limits):\n  - {problems}",
              file=sys.stderr)
    run = run_on_lava(desc, x)
    check_readout_silent(desc, run.spikes[-1])
    print(f"{run.lava_steps} Lava steps in {run.seconds:.1f} s")
    for name, s in zip(run.layer_names, run.spikes):
        print(f"  {name:>12s}: {int((s != 0).sum())} spikes")
    if labels is not None:
        print(f"accuracy on the target: {100 * float((run.predictions == labels).mean()):.2f}%")
    if a.save:
        write_npz(a.save, predictions=run.predictions,
                  **saved_arrays(run.layer_names, run.spikes, run.readout_potential))
        print(f"wrote {a.save}")
    return 0
