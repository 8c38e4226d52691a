"""A netx network as a NIR graph (the ``nir`` package, 1.0): ``Input``, then
each layer's nodes as its kind writes them (``Layer.nir_nodes``: ``Linear``
or ``Conv2d``, then ``CubaLIF``/``LIF``/``IF``; ``Flatten``), then ``Output``,
in a chain.

NIR stores no time step and no latency, so the graph's metadata says how the
numbers were made: ``dt`` (seconds per step), the discretisation a reader
must use to get the netx network back (forward Euler), the scale (the
file's integers / 64, weights and thresholds alike) and the one step of
latency each synaptic layer has on Loihi, which a reader without it does
not have (its layer l spikes l - 1 steps earlier; the spikes are the same).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lavasparse.defaults import NIR_DT
from lavasparse.fileio import atomic_path
from lavasparse.layers import UnsupportedNetwork

from .netx_format import NetDescription

DISCRETISATION = ("forward Euler at dt: I[t] = I[t-1] + dt/tau_syn (w_in S[t] - I[t-1]), "
                  "v[t] = v[t-1] + dt/tau_mem (v_leak - v[t-1] + r I[t]); spike where v[t] > v_threshold, "
                  "then v[t] = v_reset (Lava's CUBA neuron, fixed point, with decays i_decay = 4096 dt/tau_syn "
                  "and v_decay = 4096 dt/tau_mem)")
READOUT_NOTE = ("potential: the class is the output neuron with the highest potential v at the end of the "
                "sample; the output layer's threshold is set so that it never spikes")
LATENCY = ("each synaptic layer adds one time step of latency on Loihi and in Lava: the target's layer l "
           "spikes at step t + l - 1 where a reader without latency has it at t")


def to_nir(desc: NetDescription, dt: float = NIR_DT, origin: dict | None = None):
    """The network ``desc`` as a ``nir.NIRGraph`` (see the module doc); its
    metadata names ``desc``'s file, or ``origin`` (e.g. a run and its
    checkpoint) where the description was made for this graph only.
    Raises UnsupportedNetwork naming the layer and field NIR cannot hold."""
    import nir

    if desc.has_input_neuron:
        raise UnsupportedNetwork(f"{desc.path}: layer 0/neuron: an input layer with neurons is not written to NIR "
                                 f"(lavasparse writes its input as spikes into the first synapse)")
    nodes = {"input": nir.Input(input_type={"input": np.array(desc.input_shape)})}
    edges, previous = [], "input"
    for layer in desc.layers[1:]:
        for name, node in layer.nir_nodes(dt):
            nodes[name] = node
            edges.append((previous, name))
            previous = name
    nodes["output"] = nir.Output(output_type={"output": np.array(desc.layers[-1].shape)})
    edges.append((previous, "output"))
    metadata = {"source": "lavasparse", **(origin or {"netx_file": str(desc.path)}), "dt": float(dt),
                "discretisation": DISCRETISATION, "scale": "weights and thresholds: netx integers / 64",
                "latency": LATENCY}
    if desc.readout == "potential":   # NIR has no readout: a reader counting the output's spikes finds none
        metadata["readout"] = READOUT_NOTE
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def export_nir(desc: NetDescription, path: str | Path, dt: float = NIR_DT, origin: dict | None = None):
    """Write ``desc`` as a NIR file at ``path`` (atomically; ``origin``: see
    ``to_nir``); return the graph."""
    import nir

    graph = to_nir(desc, dt, origin)
    with atomic_path(Path(path)) as tmp:
        nir.write(tmp, graph)
    return graph
