"""Synaptic fan-out per input neuron, and synaptic operations from spike counts.

A spike of an input neuron costs one synaptic operation per non-zero synapse it
reaches (zero weights hold no synapse in Loihi's sparse encoding). For a conv
the fan-out depends on position: with padding and stride an edge pixel reaches
fewer outputs than a centre one, so we count it exactly.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lavasparse.export.netx_format import LayerDesc


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
    c_in, h_in, w_in = layer.in_shape
    _, h_out, w_out = layer.shape
    # Fan-out of input pixel i = number of (output o, kernel tap k) with
    # i = o*stride + k*dilation - padding and a non-zero tap. The transposed conv
    # of an all-ones output with the 0/1 kernel counts that per position of the
    # padded input; we crop the padding ourselves, since with a stride the
    # right-hand padding is not always reached (conv_transpose2d would crop a
    # real row there).
    ones = torch.ones(1, layer.shape[0], h_out, w_out, dtype=torch.float64)
    kernel = torch.as_tensor(nonzero, dtype=torch.float64)
    fan = F.conv_transpose2d(ones, kernel, stride=layer.stride, dilation=layer.dilation,
                             groups=layer.groups)[0]
    ph, pw = layer.padding
    fan = F.pad(fan, (0, max(0, pw + w_in - fan.shape[2]), 0, max(0, ph + h_in - fan.shape[1])))
    fan = fan[:, ph:ph + h_in, pw:pw + w_in]
    return np.rint(fan.numpy()).astype(np.int64)


def synaptic_ops(input_spikes: np.ndarray, fanout: np.ndarray) -> int:
    """Total synaptic operations: each input spike times its neuron's fan-out.

    ``input_spikes`` is (N, *in_shape, T) (spike counts; graded spikes count
    once per non-zero message); ``fanout`` is (*in_shape).
    """
    events = (np.asarray(input_spikes) != 0).sum(axis=(0, -1))
    if events.shape != fanout.shape:
        raise ValueError(f"input spikes of shape {input_spikes.shape} do not fit fan-out {fanout.shape}")
    return int((events.astype(np.int64) * fanout).sum())
