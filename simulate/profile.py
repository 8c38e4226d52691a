"""Per-layer cost of a network on the target, from the spikes a run produced."""
from __future__ import annotations

import numpy as np

from lavasparse.export.netx_format import NetDescription

from .energy import LOIHI, EnergyTable
from .synops import recurrent_fanout, synaptic_fanout, synaptic_ops


def profile_run(desc: NetDescription, inputs: np.ndarray, layer_spikes: list[np.ndarray],
                energy: EnergyTable = LOIHI) -> dict:
    """Profile from what entered the first layer, ``inputs`` (N, *in_shape, T),
    and each spiking layer's spikes (N, *shape, T), in network order.

    Per layer: neurons; spikes (total over samples and steps); spikes per
    neuron per step; synops (the spikes arriving at the layer times their
    fan-out); neuron_updates (neurons x steps x samples); energy_j. Totals and
    per-sample figures (units: per inference) are added under ``per_sample``.
    """
    layers = desc.spiking_layers
    if len(layer_spikes) != len(layers):
        raise ValueError(f"{len(layer_spikes)} spike arrays for {len(layers)} spiking layers")
    n, steps = inputs.shape[0], inputs.shape[-1]
    rows, incoming = [], inputs
    for layer, spikes in zip(layers, layer_spikes):
        if spikes.shape != (n, *layer.shape, steps):
            raise ValueError(f"layer {layer.name}: spikes {spikes.shape}, expected {(n, *layer.shape, steps)}")
        if layer.kind == "input":
            synops = 0
        else:  # a flatten between layers keeps (C, H, W) order, as netx's does
            synops = synaptic_ops(incoming.reshape(n, *layer.in_shape, steps), synaptic_fanout(layer))
        if layer.recurrent:   # the layer's own spikes reach its neurons again
            synops += synaptic_ops(spikes, recurrent_fanout(layer))
        count = int((spikes != 0).sum())
        updates = layer.num_neurons * steps * n
        rows.append({
            "name": layer.name, "type": layer.kind, "neurons": layer.num_neurons,
            "spikes": count, "spikes_per_neuron_per_step": count / updates,
            "synops": synops, "neuron_updates": updates,
            "energy_j": energy.energy_j(synops, count, updates),
        })
        incoming = spikes
    totals = {k: sum(r[k] for r in rows) for k in ("spikes", "synops", "neuron_updates", "energy_j")}
    return {
        "network": str(desc.path), "samples": n, "steps": steps, "energy_table": energy.to_dict(),
        "input_spikes": int((inputs != 0).sum()),
        "layers": rows, "totals": totals,
        "per_sample": {k: v / n for k, v in totals.items()},
        "hidden_spikes_per_sample": sum(r["spikes"] for r in rows[:-1]) / n,
    }
