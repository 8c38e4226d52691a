"""Which engine computes the target's spikes: Lava's simulator (the reference)
or the bit-exact emulator, optionally cross-checked against Lava."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lavasparse.defaults import ENGINES
from lavasparse.deploy.lava_runner import InputBatch, check_input, check_readout_silent, predict, run_on_lava
from lavasparse.errors import CommandError
from lavasparse.export.netx_format import NetDescription

from .emulator import Emulator


class CrossCheckError(CommandError):
    """The emulator and Lava disagree on a cross-checked sample."""


@dataclass
class TargetRun:
    """Per-layer spikes (N, *shape, T) on the target, and who computed them."""

    engine: str
    layer_names: list[str]
    spikes: list[np.ndarray]
    seconds: float
    cross_checked: int = 0
    readout_potential: np.ndarray | None = None   # a potential readout's v at each window's end, (N, *shape)

    @property
    def predictions(self) -> np.ndarray:
        return predict(self.spikes[-1], self.readout_potential)


def first_difference(names: list[str], ref: list[np.ndarray], other: list[np.ndarray]) -> str | None:
    """A readable account of the first disagreement (layer, sample, neuron, step), or None."""
    for name, a, b in zip(names, ref, other):
        if a.shape != b.shape:
            return f"layer {name}: shapes differ, Lava {a.shape} vs emulator {b.shape}"
        diff = np.argwhere(a != b)
        if len(diff):
            idx = tuple(int(i) for i in diff[0])
            return (f"layer {name}: sample {idx[0]}, neuron {idx[1:-1]}, step {idx[-1]}: Lava {int(a[idx])}, "
                    f"emulator {int(b[idx])} ({len(diff)} of {a.size} values differ)")
    return None


def run_target(desc: NetDescription, inputs: np.ndarray | InputBatch, engine: str = "lava", cross_check: int = 0,
               progress: bool = True, device: str = "cpu", input_origin: str | Path | None = None) -> TargetRun:
    """Spikes of every layer for ``inputs`` (N, *input_shape, T) from ``engine``.

    With the emulator, ``cross_check`` K > 0 runs the first K samples through
    Lava too and raises CrossCheckError, with the first disagreement, if any
    spike (or a potential readout's final potential) differs. A potential
    readout that spiked is an error (``check_readout_silent``).
    ``input_origin`` names the inputs' file in errors about them.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: expected one of {ENGINES}")
    x = check_input(inputs, desc, origin=input_origin)
    if engine == "lava":
        run = run_on_lava(desc, x, progress=progress)
        check_readout_silent(desc, run.spikes[-1])
        return TargetRun("lava", run.layer_names, run.spikes, run.seconds, readout_potential=run.readout_potential)
    t0 = time.time()
    em = Emulator(desc, device=device).run(x)
    seconds = time.time() - t0
    check_readout_silent(desc, em.spikes[-1])
    k = min(cross_check, len(x))
    if k:
        ref = run_on_lava(desc, x.head(k), progress=progress)
        problem = first_difference(ref.layer_names, ref.spikes, [s[:k] for s in em.spikes])
        if problem is None and ref.readout_potential is not None:
            problem = first_difference([f"{ref.layer_names[-1]} (final potential)"],
                                       [ref.readout_potential[..., None]], [em.readout_potential[:k, ..., None]])
        if problem:
            raise CrossCheckError(f"{desc.path}: emulator and Lava disagree on the first {k} samples: {problem}")
    return TargetRun("emulator", em.layer_names, em.spikes, seconds, cross_checked=k,
                     readout_potential=em.readout_potential)
