"""A bit-exact, batched emulator of Lava's fixed-point models for netx networks.

It computes what ``netx.hdf5.Network`` run under ``Loihi2SimCfg(select_tag=
'fixed_pt')`` computes (Dense: ``PyDenseModelBitAcc``; Conv: ``PyConvModelFixed``;
neurons: ``PyLifModelBitAcc`` / ``PyLifResetModelBitAcc``), for a whole batch
of samples at once, in integers, with torch (CPU, or the GPU when asked).

Time: each sample is run in the window that ``lavasparse.deploy.lava_runner``
cuts from a Lava run with ``reset_interval = T`` (layer l is reset on the step
it first sees the sample, and Lava's one-step synaptic latency shifts each
layer's window by one step). Within its window, layer l at step j integrates
what the synapse made of layer l - 1's spikes at step j of its own window, so
the emulator runs layer after layer over all T steps.

What it does not model it refuses with ``UnsupportedNetwork`` rather than
return numbers that might be wrong: synaptic delays, recurrent layers, graded
spikes, and anything ``read_network`` rejects.

Semantics mirrored from lava-nc 0.10.0 / lava-dl 0.6.0 (read from their source):
  - netx's ``optimize_weight_bits`` (dense only): weights shifted left by
    ``scale_bits``, exponent ``-scale_bits``; then Dense's ``clip_weights`` to
    8 bits and ``truncate_weights`` to ``num_weight_bits``; each step
    ``a = (W @ s) >> -exp`` (arithmetic shift, i.e. floor).
  - Conv: raw integer weights (netx passes no exponent), correlation as
    SLAYER's conv, result clamped to signed 24 bits.
  - LIF: ``u = sign(u*(4096-du)) * (|u*(4096-du)| >> 12) + (a << 6)``, wrapped to
    24 bits as Lava wraps it; ``v = decay(v, dv) + u + (bias << 6)`` clipped to
    +-(2**23 - 1); spike when ``v > vth << 6``; ``v = 0`` after a spike.
    netx sets du = iDecay - 1 and Lava adds ds_offset = 1: the decay is iDecay.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lavasparse.export.netx_format import LayerDesc, NetDescription

UV_BITS = 24
MAX_UV = 2 ** (UV_BITS - 1)


class UnsupportedNetwork(ValueError):
    """The network holds something the emulator does not model exactly."""


def netx_weight_mapping(weight: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense weights as Lava's fixed-point Dense uses them after netx's
    ``optimize_weight_bits`` and Lava's ``clip_weights``/``truncate_weights``.
    Returns (effective integer weights, weight exponent)."""
    weight = np.asarray(weight).astype(np.int64)
    max_w, min_w = int(weight.max()), int(weight.min())
    if max_w == 0 and min_w == 0:
        raise UnsupportedNetwork("an all-zero dense weight matrix (netx's optimize_weight_bits divides by zero)")
    if (max_w > 254 and min_w < 0) or (min_w < -256 and max_w > 0):
        weight = np.clip(weight, -256, 254)
        max_w, min_w = int(weight.max()), int(weight.min())
    if max_w < 0:
        is_signed, scale = 0, -256 / min_w
    elif min_w >= 0:
        is_signed, scale = 0, 255 / max_w
    else:
        # netx divides in numpy: 127 / 0 is inf there, so a zero maximum leaves the negative scale.
        pos = 127 / max_w if max_w > 0 else float("inf")
        is_signed, scale = 1, min(pos, -128 / min_w)
    scale_bits = int(np.floor(np.log2(scale))) + is_signed
    n = 8
    while n > 0 and np.sum(np.abs(weight / 2 ** n - np.round(weight / 2 ** n))) != 0:
        n -= 1
    n -= is_signed
    num_weight_bits = 8 - scale_bits - n
    exponent = -scale_bits
    w = (weight.astype(np.int32) << scale_bits) if scale_bits >= 0 else (weight.astype(np.int32) >> -scale_bits)
    # Lava's Dense: determine_sign_mode, clip to 8 bits, truncate to num_weight_bits.
    if w.min() >= 0:
        lava_sign = "exc"
    elif w.max() <= 0:
        lava_sign = "inh"
    else:
        lava_sign = "mixed"
    mixed = int(lava_sign == "mixed")
    if lava_sign == "inh":
        w = -w
    w = np.clip(w, -(2 ** 8) * mixed, 2 ** 8 - 1)
    trunc = 8 - num_weight_bits + mixed
    w = (w >> trunc) << trunc
    if lava_sign == "inh":
        w = -w
    return w.astype(np.int64), exponent


@dataclass
class _Neuron:
    du: int
    dv: int
    vth: int
    bias: torch.Tensor | None   # effective bias (bias_mant << 6), shaped like the layer


def _neuron(layer: LayerDesc, device) -> _Neuron:
    n = layer.neuron
    if "gradedSpike" in n and bool(np.any(n["gradedSpike"])):
        raise UnsupportedNetwork(f"layer {layer.name}: graded spikes are not emulated")
    if "messageBits" in n and int(np.max(n["messageBits"])) > 0:
        raise UnsupportedNetwork(f"layer {layer.name}: graded spikes (messageBits > 0) are not emulated")
    for key in ("iDecay", "vDecay", "vThMant"):
        if np.asarray(n[key]).size != 1:
            raise UnsupportedNetwork(f"layer {layer.name}: per-neuron {key} is not emulated")
    bias = None
    if layer.bias is not None:
        b = np.asarray(layer.bias).astype(np.int64)
        if len(layer.shape) == 1 or tuple(b.shape) == tuple(layer.shape):
            full = np.broadcast_to(b, layer.shape)
        elif b.shape == (layer.shape[0],):        # channel-wise (netx: the last of x, y, z)
            full = np.broadcast_to(b[:, None, None], layer.shape)
        else:
            raise UnsupportedNetwork(f"layer {layer.name}: bias of shape {b.shape} does not fit {layer.shape}")
        # netx casts bias_mant to int32 and Lava uses bias_exp = 6.
        bias = torch.as_tensor((full.astype(np.int32).astype(np.int64) << 6).reshape(-1), device=device)
    return _Neuron(int(n["iDecay"]), int(n["vDecay"]), int(n["vThMant"]), bias)


def lif_dynamics(a_in: torch.Tensor, neuron: _Neuron, record_states: bool = False):
    """Run the fixed-point LIF over time, time-major: ``a_in`` (T, B, n) holds
    integers (in an integer or float dtype). Returns spikes (T, B, n) bool and,
    if asked, (u, v) each (T, B, n) int64.

    The states are float64 holding exact integers (|u * (4096 - du)| < 2**36 and
    scaling by 1/4096 is exact), which vectorises better than int64 division:
    ``trunc(u * (4096 - du) / 4096)`` is Lava's ``sign(p) * (|p| >> 12)``.
    """
    steps, b, n = a_in.shape
    # Lava shifts the activation left by 6 in int32 and adds it to the decayed
    # current (|u| < 2**23): inputs below 2**24 can never overflow there.
    max_a = int(a_in.abs().max()) if a_in.numel() else 0
    if max_a >= 2 ** 24:
        raise UnsupportedNetwork("synaptic input of 2**24 or more would overflow Lava's int32 current; not emulated")
    dev = a_in.device
    u = torch.zeros(b, n, dtype=torch.float64, device=dev)
    v = torch.zeros_like(u)
    spikes = torch.empty(steps, b, n, dtype=torch.bool, device=dev)
    us = vs = None
    if record_states:
        us = torch.empty(steps, b, n, dtype=torch.int64, device=dev)
        vs = torch.empty_like(us)
    cu, cv, vth = (4096 - neuron.du) / 4096, (4096 - neuron.dv) / 4096, float(neuron.vth << 6)
    bias = neuron.bias.to(torch.float64) if neuron.bias is not None else None
    act = a_in * 64   # the << 6; exact in any float type (a power of two)
    # Decays never grow a state, so |u| <= steps * max|act| and |v| <= steps *
    # (max|u| + max|bias|). Where those bounds stay inside 24 bits, Lava's wrap
    # and clip cannot trigger and we skip them: the same numbers, fewer passes.
    max_bias = int(neuron.bias.abs().max()) if bias is not None and bias.numel() else 0
    u_bound = steps * max_a * 64
    may_wrap = u_bound >= MAX_UV
    may_clip = may_wrap or steps * (u_bound + max_bias) >= MAX_UV - 1
    for t in range(steps):
        u.mul_(cu).trunc_()
        u.add_(act[t])
        if may_wrap and bool(((u > MAX_UV) | (u <= -MAX_UV)).any()):   # Lava's 24-bit wrap, as written there
            wrapped = torch.where(u > MAX_UV, u - 2 * MAX_UV, u)
            u = torch.where(wrapped <= -MAX_UV, u + 2 * MAX_UV, wrapped)
        v.mul_(cv).trunc_()
        v.add_(u)
        if bias is not None:
            v.add_(bias)
        if may_clip:
            v.clamp_(-MAX_UV + 1, MAX_UV - 1)
        s = torch.gt(v, vth, out=spikes[t])
        v.masked_fill_(s, 0)
        if record_states:
            us[t], vs[t] = u.to(torch.int64), v.to(torch.int64)
    return spikes, (us, vs)


@dataclass
class _Layer:
    desc: LayerDesc
    neuron: _Neuron
    weight: torch.Tensor | None      # float: exact for integer sums below 2**24 (float32) or 2**53
    exponent: int = 0
    fan_in_bound: int = 0            # largest |sum of weights| into one neuron


def _float_weight(w: np.ndarray, per_output_axes: tuple[int, ...], device) -> tuple[torch.Tensor, int]:
    """Weights as float32 when every possible synaptic sum of 0/1 spikes stays
    below 2**24 (so float32 adds integers exactly and BLAS can do the work),
    else float64. Inputs to weighted layers are 0/1 spikes: graded spikes are
    refused in ``_neuron``."""
    bound = int(np.abs(w).sum(axis=per_output_axes).max()) if w.size else 0
    dtype = torch.float32 if bound < 2 ** 24 else torch.float64
    if bound >= 2 ** 53:
        raise UnsupportedNetwork("synaptic sums too large to emulate exactly")
    return torch.as_tensor(w, dtype=dtype, device=device), bound


@dataclass
class EmulatorRun:
    """Per-layer spikes (N, *shape, T) int8 in (C, H, W) order; states if recorded."""

    layer_names: list[str]
    spikes: list[np.ndarray]
    currents: list[np.ndarray] | None = None
    voltages: list[np.ndarray] | None = None

    @property
    def predictions(self) -> np.ndarray:
        from lavasparse.deploy.lava_runner import predict

        return predict(self.spikes[-1])


class Emulator:
    """Batched fixed-point emulation of a netx description; see the module doc."""

    def __init__(self, desc: NetDescription, device: str | torch.device = "cpu"):
        self.desc = desc
        self.device = torch.device(device)
        self.layers: list[_Layer] = []
        for layer in desc.spiking_layers:
            if layer.delay is not None:
                raise UnsupportedNetwork(f"{desc.path}: layer {layer.name} has synaptic delays; not emulated")
            neuron = _neuron(layer, self.device)
            if layer.kind == "input":
                self.layers.append(_Layer(layer, neuron, None))
            elif layer.kind == "dense":
                w, exp = netx_weight_mapping(layer.weight)
                wt, bound = _float_weight(w, (1,), self.device)
                self.layers.append(_Layer(layer, neuron, wt, exp, bound))
            elif layer.kind == "conv":
                wt, bound = _float_weight(layer.weight.astype(np.int64), (1, 2, 3), self.device)
                self.layers.append(_Layer(layer, neuron, wt, 0, bound))
            else:
                raise UnsupportedNetwork(f"{desc.path}: layer {layer.name} of type {layer.kind} is not emulated")

    def _synapse(self, layer: _Layer, x: torch.Tensor) -> torch.Tensor:
        """Synaptic input (T, B, n_out), integers held in a float dtype, from
        time-major input x (T, B, *in_shape)."""
        d = layer.desc
        steps, b = x.shape[:2]
        if d.kind == "input":
            return x.reshape(steps, b, -1).to(torch.float64)
        # Spikes are 0/1 here, so |sum| <= fan_in_bound and the float type was
        # chosen so that every partial sum is an exact integer.
        if d.kind == "dense":
            flat = x.reshape(steps, b, -1).to(layer.weight.dtype)
            acc = torch.matmul(flat, layer.weight.T)  # exact integers
            # Lava shifts the sum by the weight exponent: << e, or >> -e (floor); exact in floats.
            return acc * 2.0 ** layer.exponent if layer.exponent > 0 else torch.floor(acc * 2.0 ** layer.exponent)
        frames = x.reshape(steps * b, *x.shape[2:]).to(layer.weight.dtype)
        out = F.conv2d(frames, layer.weight, stride=d.stride, padding=d.padding, dilation=d.dilation,
                       groups=d.groups)
        if layer.fan_in_bound >= 2 ** 23:
            out.clamp_(-(2 ** 23), 2 ** 23 - 1)  # Lava's signed 24-bit clamp of the conv output
        return out.reshape(steps, b, -1)

    @torch.no_grad()
    def run(self, inputs: np.ndarray, batch_size: int = 256, record_states: bool = False) -> EmulatorRun:
        """Run ``inputs`` (N, *input_shape, T) (what enters the first layer, as
        for Lava) in batches of ``batch_size`` samples."""
        from lavasparse.deploy.lava_runner import as_batch

        x_all = as_batch(inputs, self.desc)
        outs: list[list[np.ndarray]] = [[] for _ in self.layers]
        us: list[list[np.ndarray]] = [[] for _ in self.layers]
        vs: list[list[np.ndarray]] = [[] for _ in self.layers]
        # Internally time-major, (T, B, *shape): each step's slice is contiguous.
        to_sample_major = lambda a: np.moveaxis(a.cpu().numpy(), 0, -1)
        for start in range(0, len(x_all), batch_size):
            x = torch.as_tensor(np.moveaxis(x_all[start:start + batch_size], -1, 0), device=self.device)
            for i, layer in enumerate(self.layers):
                a_in = self._synapse(layer, x)
                s, (u, v) = lif_dynamics(a_in, layer.neuron, record_states)
                shape = (s.shape[0], s.shape[1], *layer.desc.shape)
                x = s.reshape(shape)
                outs[i].append(to_sample_major(x.to(torch.int8)))
                if record_states:
                    us[i].append(to_sample_major(u.reshape(shape)))
                    vs[i].append(to_sample_major(v.reshape(shape)))
        cat = lambda parts: [np.concatenate(p) for p in parts]
        return EmulatorRun([l.desc.name for l in self.layers], cat(outs),
                           cat(us) if record_states else None, cat(vs) if record_states else None)
