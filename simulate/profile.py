"""Per-layer cost of a network on the target, from the spikes a run produced:
``profile_run`` gives a ``Profile`` (each layer a ``LayerCost``), which
``to_dict`` writes as profile.json and ``Profile.from_dict`` reads back."""
from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np

from lavasparse.deploy.resources import check_network
from lavasparse.export.netx_format import NetDescription

from .energy import EnergyProfile, default_profile


def footprint_bytes(model) -> int:
    """Bytes of a torch model's parameters and buffers: NeuroBench's Footprint."""
    return int(sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers())))


@dataclass(frozen=True)
class LayerCost:
    """What one spiking layer did on the target over a whole run (``samples``
    inferences of ``steps`` steps): counts and joules are sums over the run,
    not per inference."""
    name: str
    kind: str                 # its netx type ('dense', 'conv', ...)
    neurons: int
    cores: int                # Loihi 2 cores it takes (deploy/resources.py)
    spikes: int               # its output spikes
    synops: int               # the spikes arriving at it times the non-zero synapses each reaches
    synapses_dense: int       # every synapse of its connectivity
    synapses_nonzero: int     # those with a non-zero weight: the ones that exist on the chip
    neuron_updates: int       # neurons x steps x samples
    ann_macs: int             # multiply-accumulates of the same layer in an ANN, per inference
    energy_dynamic_j: float
    energy_static_j: float

    @property
    def energy_j(self) -> float:
        return self.energy_dynamic_j + self.energy_static_j

    @property
    def density(self) -> float | None:
        """Share of its synapses that exist on the chip; None without synapses."""
        return self.synapses_nonzero / self.synapses_dense if self.synapses_dense else None

    @property
    def spikes_per_neuron_per_step(self) -> float:
        return self.spikes / self.neuron_updates if self.neuron_updates else 0.0

    def to_dict(self) -> dict:
        return {"name": self.name, "type": self.kind, "neurons": self.neurons, "cores": self.cores,
                "spikes": self.spikes, "spikes_per_neuron_per_step": self.spikes_per_neuron_per_step,
                "synops": self.synops, "synapses_dense": self.synapses_dense,
                "synapses_nonzero": self.synapses_nonzero, "density": self.density,
                "neuron_updates": self.neuron_updates, "energy_dynamic_j": self.energy_dynamic_j,
                "ann_macs": self.ann_macs, "energy_static_j": self.energy_static_j, "energy_j": self.energy_j}

    @classmethod
    def from_dict(cls, d: dict) -> "LayerCost":
        return cls(**{f.name: d["type" if f.name == "kind" else f.name] for f in fields(cls)})


@dataclass(frozen=True)
class CostSums:
    """Spikes, synaptic ops, neuron updates and joules added up: over a run
    (``Profile.totals``) or per inference (``Profile.per_sample``)."""
    spikes: float
    synops: float
    neuron_updates: float
    energy_dynamic_j: float
    energy_static_j: float
    energy_j: float

    @classmethod
    def of(cls, layers: tuple[LayerCost, ...]) -> "CostSums":
        return cls(*(sum(getattr(l, f.name) for l in layers) for f in fields(cls)))


@dataclass(frozen=True)
class PerInference(CostSums):
    """``CostSums`` per inference, with the inference's time and what the
    same network costs as an ANN."""
    inference_time_s: float = 0.0
    ann_macs: int = 0


@dataclass(frozen=True)
class Profile:
    """A network's cost on the target for one batch of inputs (``samples``
    inferences of ``steps`` steps each): its layers' ``LayerCost`` in network
    order, the input spikes that entered the first layer, the inference time
    of the energy profile's timing model, and who computed the spikes."""
    network: str
    samples: int
    steps: int
    energy_profile: EnergyProfile
    input_spikes: int
    layers: tuple[LayerCost, ...]
    inference_time_s: float
    footprint_bytes: int | None = None           # the SLAYER model's, when one was profiled
    engine: str | None = None                    # who computed the spikes (simulate/engines.py)
    cross_checked_on_lava: int | None = None     # samples checked identical on Lava
    notes: tuple[str, ...] = ()                  # where a figure rests on more than the energy profile says

    @property
    def cores(self) -> int:
        return sum(l.cores for l in self.layers)

    # Worked out once: to_dict and neurobench read them field by field (frozen, so they cannot go stale).
    @cached_property
    def totals(self) -> CostSums:
        return CostSums.of(self.layers)

    @cached_property
    def per_sample(self) -> PerInference:
        """Figures per inference."""
        t = self.totals
        return PerInference(*(getattr(t, f.name) / self.samples for f in fields(CostSums)),
                            inference_time_s=self.inference_time_s,
                            ann_macs=sum(l.ann_macs for l in self.layers))

    @property
    def hidden_spikes_per_sample(self) -> float:
        """Spikes of every layer but the output, per inference."""
        return sum(l.spikes for l in self.layers[:-1]) / self.samples

    @property
    def neurobench(self) -> dict[str, float]:
        """NeuroBench's metrics under its own names, per inference:
        Effective_ACs (synops; NeuroBench also skips zero weights), Dense
        (every synapse for every input, every step), Activation_Sparsity
        (share of neuron-steps without a spike), Connection_Sparsity (share of
        zero weights) and, for a profiled SLAYER model, Footprint (bytes)."""
        weights = sum(l.synapses_dense for l in self.layers)
        t = self.totals
        metrics = {
            "Effective_ACs": self.per_sample.synops,
            "Dense": float(weights * self.steps),
            "Activation_Sparsity": 1 - t.spikes / max(1, t.neuron_updates),
            "Connection_Sparsity": 1 - sum(l.synapses_nonzero for l in self.layers) / weights if weights else 0.0,
        }
        if self.footprint_bytes is not None:
            metrics["Footprint"] = self.footprint_bytes
        return metrics

    def to_dict(self) -> dict:
        """profile.json: every figure, derived ones included, so that a reader
        needs no lavasparse."""
        per_sample = {f.name: getattr(self.per_sample, f.name) for f in fields(PerInference)}
        d = {"network": self.network, "samples": self.samples, "steps": self.steps,
             "energy_profile": self.energy_profile.to_dict(), "cores": self.cores,
             "input_spikes": self.input_spikes, "layers": [l.to_dict() for l in self.layers],
             "totals": {f.name: getattr(self.totals, f.name) for f in fields(CostSums)},
             "per_sample": per_sample, "neurobench": self.neurobench,
             "hidden_spikes_per_sample": self.hidden_spikes_per_sample}
        if self.engine is not None:
            d["engine"] = self.engine
        if self.cross_checked_on_lava is not None:
            d["cross_checked_on_lava"] = self.cross_checked_on_lava
        if self.notes:
            d["notes"] = list(self.notes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Profile":
        """The profile ``to_dict`` wrote; derived figures are recomputed."""
        return cls(network=d["network"], samples=d["samples"], steps=d["steps"],
                   energy_profile=EnergyProfile.from_dict(d["energy_profile"]), input_spikes=d["input_spikes"],
                   layers=tuple(LayerCost.from_dict(l) for l in d["layers"]),
                   inference_time_s=d["per_sample"]["inference_time_s"],
                   footprint_bytes=d["neurobench"].get("Footprint"), engine=d.get("engine"),
                   cross_checked_on_lava=d.get("cross_checked_on_lava"), notes=tuple(d.get("notes", ())))


def profile_run(desc: NetDescription, inputs: np.ndarray, layer_spikes: list[np.ndarray],
                energy: EnergyProfile | None = None) -> Profile:
    """Profile from what entered the first layer, ``inputs`` (N, *in_shape, T),
    and each spiking layer's spikes (N, *shape, T), in network order.

    Per layer (``LayerCost``): neurons, spikes, synops (the spikes arriving at
    the layer times their fan-out), neuron updates, cores (the Loihi 2 mapping
    of ``deploy/resources.py``) and energy (``energy.py``; default profile:
    Loihi 1, Davies et al. 2018), dynamic and static; the static share follows
    from the inference time, which the energy profile's timing model derives
    from each layer's average load per step."""
    energy = energy or default_profile()
    mapping = {use.name: use for use in check_network(desc).layers}
    layers = desc.spiking_layers
    if len(layer_spikes) != len(layers):
        raise ValueError(f"{len(layer_spikes)} spike arrays for {len(layers)} spiking layers")
    n, steps = inputs.shape[0], inputs.shape[-1]
    counted, incoming = [], inputs
    for layer, spikes in zip(layers, layer_spikes):
        if spikes.shape != (n, *layer.shape, steps):
            raise ValueError(f"layer {layer.name}: spikes {spikes.shape}, expected {(n, *layer.shape, steps)}")
        counted.append((layer, mapping[layer.name], layer.synaptic_ops(incoming, spikes), int((spikes != 0).sum())))
        incoming = spikes
    # The time an inference takes, from each layer's average per-step load.
    step_s = energy.step_time_s([(synops / (n * steps), layer.num_neurons, use.cores)
                                 for layer, use, synops, _ in counted])
    inference_s = steps * step_s
    costs = []
    for layer, use, synops, count in counted:
        updates = layer.num_neurons * steps * n
        costs.append(LayerCost(
            name=layer.name, kind=layer.kind, neurons=layer.num_neurons, cores=use.cores, spikes=count,
            synops=synops, synapses_dense=use.synapses_dense, synapses_nonzero=use.synapses_nonzero,
            neuron_updates=updates, ann_macs=layer.ann_macs(),
            energy_dynamic_j=energy.dynamic_j(synops, count, updates),
            energy_static_j=energy.static_j(use.cores, inference_s) * n))
    graded = [layer.name for layer in layers if layer.lava_block]
    notes = (f"layers {', '.join(graded)}: their synaptic ops carry graded payloads (ISI gates), priced as "
             f"binary ones: the energy profile has no figure for graded spikes (an estimate)",) if graded else ()
    return Profile(network=str(desc.path), samples=n, steps=steps, energy_profile=energy,
                   input_spikes=int((inputs != 0).sum()), layers=tuple(costs), inference_time_s=inference_s,
                   notes=notes)
