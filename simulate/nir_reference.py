"""A NIR graph run by a reader nobody here wrote: snnTorch's ``import_from_nir``
(float, forward Euler at its own dt of 1e-4 s), layer by layer, beside the
target's fixed-point spikes of the same network. The fidelity report of an
import and the tests of our export both use it.

snnTorch's reader has no per-layer latency; the target's layer l spikes l - 1
steps later, and its per-sample windows (``SpikingNet.layer_windows``) are
already shifted back, so step t of both is the same step of the sample.
Samples run one at a time, unbatched: snnTorch's reader turns NIR's
``Flatten`` (which has no batch axis) into ``torch.nn.Flatten(0, -1)``, which
would flatten a batch too.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lavasparse.deploy.lava_runner import predict
from lavasparse.export.netx_format import NetDescription

from .engines import run_target


def snntorch_layer_spikes(graph_or_path, inputs: np.ndarray, progress: bool = False) -> list[np.ndarray]:
    """Each neuron layer's spikes (N, *shape, T) in snnTorch's simulation of
    the NIR graph (a ``nir.NIRGraph`` or a file), from rest for every sample,
    for ``inputs`` (N, *input_shape, T)."""
    import nir
    import snntorch as snn
    from snntorch import utils as snn_utils
    from snntorch.import_nir import import_from_nir
    from tqdm import tqdm

    graph = nir.read(graph_or_path) if isinstance(graph_or_path, (str, Path)) else graph_or_path
    with contextlib.redirect_stdout(io.StringIO()):   # its reader prints its progress
        net = import_from_nir(graph)
    neurons = [m for m in net.modules() if isinstance(m, snn.SpikingNeuron)]
    if not neurons:
        raise ValueError("snnTorch built no spiking neurons from the graph")
    record: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: record.append(out[0] if isinstance(out, tuple) else out))
             for m in neurons]
    n, steps = inputs.shape[0], inputs.shape[-1]
    out: list[list[np.ndarray]] = [[] for _ in neurons]
    try:
        with torch.no_grad():
            for i in tqdm(range(n), desc="snnTorch", disable=None if progress else True, leave=False):
                snn_utils.reset(net)
                per_step = []
                for t in range(steps):
                    record.clear()
                    net(torch.tensor(inputs[i, ..., t], dtype=torch.float32))
                    if len(record) != len(neurons):
                        raise RuntimeError(f"snnTorch ran {len(record)} of {len(neurons)} neuron layers at step {t}")
                    per_step.append([r.detach().numpy().copy() for r in record])
                for layer in range(len(neurons)):
                    out[layer].append(np.stack([s[layer] for s in per_step], axis=-1))
    finally:
        for h in hooks:
            h.remove()
    return [np.stack(layer).astype(np.int8) for layer in out]


@dataclass
class LayerAgreement:
    """One layer: spikes in each simulation, at how many (sample, neuron,
    step) positions both spike and at how many either does, and how many of
    the target's unmatched spikes have an unmatched reader spike at the same
    neuron one step earlier or one step later (a timing shift, not a lost or
    extra spike)."""
    name: str
    spikes_target: int
    spikes_reference: int
    both: int
    either: int
    reader_earlier: int = 0
    reader_later: int = 0

    @property
    def matched(self) -> float:
        """Share of all spikes, the target's and the reader's together, that
        the other simulation has at the same neuron and step:
        2 * both / (target + reader) (1 where neither spikes)."""
        total = self.spikes_target + self.spikes_reference
        return 2 * self.both / total if total else 1.0

    @property
    def shared(self) -> float:
        """The stricter count: positions where both spike over positions where
        either does, both / either (1 where neither spikes). A one-step shift
        costs one position in ``matched``'s numerator per side but adds two
        to this denominator."""
        return self.both / self.either if self.either else 1.0

    @property
    def unmatched_target(self) -> int:
        return self.spikes_target - self.both


@dataclass
class ReaderAgreement:
    """The target against a reader of the same NIR graph, per layer and on the predicted class."""
    layers: list[LayerAgreement]
    prediction_match: float
    accuracy_target: float | None
    accuracy_reference: float | None

    @property
    def hidden(self) -> LayerAgreement:
        """All hidden layers counted together."""
        hidden = self.layers[:-1]
        return LayerAgreement("hidden", *(sum(getattr(l, f) for l in hidden) for f in
                                          ("spikes_target", "spikes_reference", "both", "either",
                                           "reader_earlier", "reader_later")))

    @property
    def hidden_matched(self) -> float:
        return self.hidden.matched

    @property
    def hidden_shared(self) -> float:
        return self.hidden.shared

    def table(self) -> str:
        rows = ["| layer | spikes on the target | spikes in the reader | matched | shared (both/either) "
                "| target's unmatched spikes: reader one step earlier / later / neither |",
                "|---|---:|---:|---:|---:|---|"]
        rows += [f"| {l.name} | {l.spikes_target} | {l.spikes_reference} | {100 * l.matched:.2f}% "
                 f"| {100 * l.shared:.2f}% | {l.reader_earlier} / {l.reader_later} / "
                 f"{l.unmatched_target - l.reader_earlier - l.reader_later} |"
                 for l in self.layers]
        acc = ("" if self.accuracy_target is None else
               f"; accuracy: target {100 * self.accuracy_target:.2f}%, reader {100 * self.accuracy_reference:.2f}%")
        return ("\n".join(rows) + f"\n\nhidden spikes matched: {100 * self.hidden_matched:.2f}%, "
                f"shared: {100 * self.hidden_shared:.2f}%\n"
                f"predicted class the same: {100 * self.prediction_match:.2f}%{acc}\n")


def _one_step_shifts(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """Unmatched spikes of ``a`` (bool, time last) with an unmatched spike of
    ``b`` at the same neuron one step earlier, and one step later (a spike
    with both counts as earlier)."""
    only_a, only_b = a & ~b, b & ~a
    earlier = np.zeros_like(only_a)
    earlier[..., 1:] = only_b[..., :-1]
    later = np.zeros_like(only_a)
    later[..., :-1] = only_b[..., 1:]
    n_earlier = int((only_a & earlier).sum())
    return n_earlier, int((only_a & later & ~earlier).sum())


def agreement(names: list[str], target: list[np.ndarray], reference: list[np.ndarray],
              labels: np.ndarray | None = None, target_potential: np.ndarray | None = None) -> ReaderAgreement:
    """Compare per-layer spikes (N, *shape, T) of the target and a reader;
    the target's classes from ``target_potential`` where its readout is a
    potential (the reader's from its spikes: NIR holds no readout)."""
    if len(target) != len(reference) or len(names) != len(target):
        raise ValueError(f"{len(target)} target layers, {len(reference)} reader layers, {len(names)} names")
    layers = []
    for name, a, b in zip(names, target, reference):
        if a.shape != b.shape:
            raise ValueError(f"layer {name}: target spikes {a.shape}, reader {b.shape}")
        a, b = a != 0, b != 0
        layers.append(LayerAgreement(name, int(a.sum()), int(b.sum()), int((a & b).sum()), int((a | b).sum()),
                                     *_one_step_shifts(a, b)))
    pa, pb = predict(target[-1], target_potential), predict(reference[-1])
    return ReaderAgreement(layers, float((pa == pb).mean()),
                           None if labels is None else float((pa == labels).mean()),
                           None if labels is None else float((pb == labels).mean()))


def target_against_snntorch(desc: NetDescription, nir_path, inputs: np.ndarray, labels: np.ndarray | None = None,
                            progress: bool = False) -> ReaderAgreement:
    """The network ``desc`` on the target (the emulator, bit-exact to Lava)
    against snnTorch's reading of its NIR file ``nir_path``, on the same
    input spikes (N, *input_shape, T): the fidelity report of an import, and
    how the tests and the agreement benchmark judge our NIR export (each
    layer's ``spikes_target`` says whether it spiked at all)."""
    target = run_target(desc, inputs, "emulator", progress=progress)
    return agreement(target.layer_names, target.spikes, snntorch_layer_spikes(nir_path, inputs, progress), labels,
                     target.readout_potential)
