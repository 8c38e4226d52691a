"""Per-layer cost of a network on the target, from the spikes a run produced."""
from __future__ import annotations

import numpy as np

from lavasparse.deploy.resources import check_network
from lavasparse.export.netx_format import NetDescription

from .energy import EnergyProfile, default_profile


def footprint_bytes(model) -> int:
    """Bytes of a torch model's parameters and buffers: NeuroBench's Footprint."""
    return int(sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers())))


def profile_run(desc: NetDescription, inputs: np.ndarray, layer_spikes: list[np.ndarray],
                energy: EnergyProfile | None = None) -> dict:
    """Profile from what entered the first layer, ``inputs`` (N, *in_shape, T),
    and each spiking layer's spikes (N, *shape, T), in network order.

    Per layer: neurons; spikes (total over samples and steps); spikes per
    neuron per step; synops (the spikes arriving at the layer times their
    fan-out); neuron_updates (neurons x steps x samples); cores (the Loihi 2
    mapping of ``deploy/resources.py``); energy_dynamic_j, energy_static_j and
    their sum energy_j (see ``energy.py``; default profile: Loihi 1, Davies et
    al. 2018). Totals and per-sample figures (units: per inference) follow,
    with inference_time_s, and under ``neurobench`` the metrics NeuroBench
    names the same way: Effective_ACs (synops; NeuroBench also skips zero
    weights), Dense (every synapse for every input, every step),
    Activation_Sparsity (share of neuron-steps without a spike) and
    Connection_Sparsity (share of zero weights).
    """
    energy = energy or default_profile()
    mapping = {use.name: use for use in check_network(desc).layers}
    layers = desc.spiking_layers
    if len(layer_spikes) != len(layers):
        raise ValueError(f"{len(layer_spikes)} spike arrays for {len(layers)} spiking layers")
    n, steps = inputs.shape[0], inputs.shape[-1]
    rows, incoming = [], inputs
    for layer, spikes in zip(layers, layer_spikes):
        if spikes.shape != (n, *layer.shape, steps):
            raise ValueError(f"layer {layer.name}: spikes {spikes.shape}, expected {(n, *layer.shape, steps)}")
        synops = layer.synaptic_ops(incoming, spikes)
        count = int((spikes != 0).sum())
        updates = layer.num_neurons * steps * n
        use = mapping[layer.name]
        rows.append({
            "name": layer.name, "type": layer.kind, "neurons": layer.num_neurons, "cores": use.cores,
            "spikes": count, "spikes_per_neuron_per_step": count / updates,
            "synops": synops, "synapses_dense": use.synapses_dense, "synapses_nonzero": use.synapses_nonzero,
            # share of the layer's synapses that exist on the chip (non-zero weights); None without synapses
            "density": use.synapses_nonzero / use.synapses_dense if use.synapses_dense else None,
            "neuron_updates": updates, "energy_dynamic_j": energy.dynamic_j(synops, count, updates),
            "ann_macs": layer.ann_macs(),
        })
        incoming = spikes
    # The time an inference takes, from each layer's average per-step load.
    step_s = energy.step_time_s([(r["synops"] / (n * steps), r["neurons"], r["cores"]) for r in rows])
    inference_s = steps * step_s
    for r in rows:
        r["energy_static_j"] = energy.static_j(r["cores"], inference_s) * n
        r["energy_j"] = r["energy_dynamic_j"] + r["energy_static_j"]
    keys = ("spikes", "synops", "neuron_updates", "energy_dynamic_j", "energy_static_j", "energy_j")
    totals = {k: sum(r[k] for r in rows) for k in keys}
    per_sample = {k: v / n for k, v in totals.items()}
    per_sample["inference_time_s"] = inference_s
    per_sample["ann_macs"] = sum(r["ann_macs"] for r in rows)   # what the same network costs as an ANN
    weights = sum(r["synapses_dense"] for r in rows)
    neurobench = {
        "Effective_ACs": per_sample["synops"],
        "Dense": float(weights * steps),
        "Activation_Sparsity": 1 - totals["spikes"] / max(1, totals["neuron_updates"]),
        "Connection_Sparsity": 1 - sum(r["synapses_nonzero"] for r in rows) / weights if weights else 0.0,
    }
    return {
        "network": str(desc.path), "samples": n, "steps": steps, "energy_profile": energy.to_dict(),
        "cores": sum(r["cores"] for r in rows), "input_spikes": int((inputs != 0).sum()),
        "layers": rows, "totals": totals, "per_sample": per_sample, "neurobench": neurobench,
        "hidden_spikes_per_sample": sum(r["spikes"] for r in rows[:-1]) / n,
    }
