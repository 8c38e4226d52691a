"""Synaptic fan-out per input neuron, and synaptic operations from spike counts.

A spike of an input neuron costs one synaptic operation per non-zero synapse it
reaches (zero weights hold no synapse in Loihi's sparse encoding). For a conv
the fan-out depends on position: with padding and stride an edge pixel reaches
fewer outputs than a centre one, so we count it exactly, by the rule
training's cost term uses (``lavasparse.layers.geometry``).
"""
from __future__ import annotations

import numpy as np

from lavasparse.layers.geometry import conv_fanout

from .netx_format import LayerDesc


def recurrent_fanout(layer: LayerDesc) -> np.ndarray:
    """Non-zero recurrent synapses leaving each neuron of a dense_rec layer
    (features,); int64. ``weight_rec[i, j]`` connects neuron j to neuron i."""
    if layer.weight_rec is None:
        raise ValueError(f"layer {layer.name} has no recurrent synapses")
    return (layer.weight_rec != 0).sum(axis=0).astype(np.int64).reshape(layer.shape)


def synaptic_fanout(layer: LayerDesc) -> np.ndarray:
    """Non-zero synapses leaving each input neuron of ``layer``, shaped like its
    input ((C, H, W) or (features,)); int64."""
    if layer.weight is None:
        raise ValueError(f"layer {layer.name} has no synapses")
    nonzero = (layer.weight != 0)
    if layer.kind == "dense":
        return nonzero.sum(axis=0).astype(np.int64).reshape(layer.in_shape)
    if layer.kind != "conv":
        raise ValueError(f"layer {layer.name}: no fan-out rule for {layer.kind!r}")
    return conv_fanout(nonzero, layer.in_shape, layer.shape, layer.stride, layer.padding, layer.dilation,
                       layer.groups)


def ann_macs(layer: LayerDesc) -> int:
    """Multiply-accumulates of the same layer in an ANN, per inference: every
    synapse once (a conv's kernel once per output position)."""
    if layer.weight is None:
        return 0
    if layer.kind == "conv":
        macs = int(np.prod(layer.shape)) * int(np.prod(layer.weight.shape[1:]))
    else:
        macs = int(layer.weight.size)
    return macs + (int(layer.weight_rec.size) if layer.weight_rec is not None else 0)


def synaptic_ops(input_spikes: np.ndarray, fanout: np.ndarray) -> int:
    """Total synaptic operations: each input spike times its neuron's fan-out.

    ``input_spikes`` is (N, *in_shape, T) (spike counts; graded spikes count
    once per non-zero message); ``fanout`` is (*in_shape).
    """
    events = (np.asarray(input_spikes) != 0).sum(axis=(0, -1))
    if events.shape != fanout.shape:
        raise ValueError(f"input spikes of shape {input_spikes.shape} do not fit fan-out {fanout.shape}")
    return int((events.astype(np.int64) * fanout).sum())
