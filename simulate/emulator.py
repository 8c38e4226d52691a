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
        sign, is_signed, scale = "inh", 0, -256 / min_w
    elif min_w >= 0:
        sign, is_signed, scale = "exc", 0, 255 / max_w
    else:
        # netx divides in numpy: 127 / 0 is inf there, so a zero maximum leaves the negative scale.
        pos = 127 / max_w if max_w > 0 else float("inf")
        sign, is_signed, scale = "mixed", 1, min(pos, -128 / min_w)
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
    for key in ("gradedSpike",):
        if key in n and bool(np.any(n[key])):
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


def _decay(x: torch.Tensor, d: int) -> torch.Tensor:
    """sign(x * (4096 - d)) * (|x * (4096 - d)| >> 12), as Lava's LIF decays u and v."""
    p = x * (4096 - d)
    return torch.sign(p) * (torch.abs(p) >> 12)


def lif_dynamics(a_in: torch.Tensor, neuron: _Neuron, record_states: bool = False):
    """Run the fixed-point LIF over time. ``a_in`` (B, n, T) int64.
    Returns spikes (B, n, T) int8 and, if asked, (u, v) each (B, n, T) int64."""
    b, n, steps = a_in.shape
    u = torch.zeros(b, n, dtype=torch.int64, device=a_in.device)
    v = torch.zeros_like(u)
    spikes = torch.zeros(b, n, steps, dtype=torch.int8, device=a_in.device)
    us = vs = None
    if record_states:
        us, vs = torch.empty_like(a_in), torch.empty_like(a_in)
    vth = neuron.vth << 6
    for t in range(steps):
        act = a_in[..., t] << 6
        if act.abs().max() >= 2 ** 31 if act.numel() else False:
            raise UnsupportedNetwork("synaptic input overflows Lava's int32 activation; not emulated")
        dc = _decay(u, neuron.du) + act
        wrapped = torch.where(dc > MAX_UV, dc - 2 * MAX_UV, dc)
        u = torch.where(wrapped <= -MAX_UV, dc + 2 * MAX_UV, wrapped)
        v = _decay(v, neuron.dv) + u
        if neuron.bias is not None:
            v = v + neuron.bias
        v = v.clamp(-MAX_UV + 1, MAX_UV - 1)
        s = v > vth
        spikes[..., t] = s.to(torch.int8)
        v = torch.where(s, torch.zeros_like(v), v)
        if record_states:
            us[..., t], vs[..., t] = u, v
    return spikes, (us, vs)


@dataclass
class _Layer:
    desc: LayerDesc
    neuron: _Neuron
    weight: torch.Tensor | None
    exponent: int = 0


@dataclass
class EmulatorRun:
    """Per-layer spikes (N, *shape, T) int8 in (C, H, W) order; states if recorded."""

    layer_names: list[str]
    spikes: list[np.ndarray]
    currents: list[np.ndarray] | None = None
    voltages: list[np.ndarray] | None = None

    @property
    def predictions(self) -> np.ndarray:
        out = self.spikes[-1]
        return out.reshape(out.shape[0], -1, out.shape[-1]).sum(-1).argmax(1)


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
                self.layers.append(_Layer(layer, neuron, torch.as_tensor(w, device=self.device), exp))
            elif layer.kind == "conv":
                self.layers.append(_Layer(layer, neuron, torch.as_tensor(
                    layer.weight.astype(np.int64), dtype=torch.float64, device=self.device)))
            else:
                raise UnsupportedNetwork(f"{desc.path}: layer {layer.name} of type {layer.kind} is not emulated")

    def _synapse(self, layer: _Layer, x: torch.Tensor) -> torch.Tensor:
        """Synaptic input (B, n_out, T) int64 from spikes x (B, *in_shape, T)."""
        d = layer.desc
        if d.kind == "input":
            return x.reshape(x.shape[0], -1, x.shape[-1]).to(torch.int64)
        if d.kind == "dense":
            flat = x.reshape(x.shape[0], -1, x.shape[-1]).to(torch.int64)
            acc = torch.einsum("oi,bit->bot", layer.weight, flat)
            return acc << layer.exponent if layer.exponent > 0 else acc >> -layer.exponent
        # conv: float64 holds these integer sums exactly (|sum| < 2**53)
        b, steps = x.shape[0], x.shape[-1]
        frames = x.permute(0, 4, 1, 2, 3).reshape(b * steps, *x.shape[1:4]).to(torch.float64)
        out = F.conv2d(frames, layer.weight, stride=d.stride, padding=d.padding, dilation=d.dilation,
                       groups=d.groups)
        out = torch.round(out).to(torch.int64).clamp(-(2 ** 23), 2 ** 23 - 1)  # Lava's signed 24-bit clamp
        return out.reshape(b, steps, -1).permute(0, 2, 1)

    @torch.no_grad()
    def run(self, inputs: np.ndarray, batch_size: int = 256, record_states: bool = False) -> EmulatorRun:
        """Run ``inputs`` (N, *input_shape, T) (what enters the first layer, as
        for Lava) in batches of ``batch_size`` samples."""
        from lavasparse.deploy.lava_runner import as_batch

        x_all = as_batch(inputs, self.desc)
        outs: list[list[np.ndarray]] = [[] for _ in self.layers]
        us: list[list[np.ndarray]] = [[] for _ in self.layers]
        vs: list[list[np.ndarray]] = [[] for _ in self.layers]
        for start in range(0, len(x_all), batch_size):
            x = torch.as_tensor(x_all[start:start + batch_size], device=self.device)
            for i, layer in enumerate(self.layers):
                a_in = self._synapse(layer, x)
                s, (u, v) = lif_dynamics(a_in, layer.neuron, record_states)
                shape = (s.shape[0], *layer.desc.shape, s.shape[-1])
                outs[i].append(s.reshape(shape).cpu().numpy())
                if record_states:
                    us[i].append(u.reshape(shape).cpu().numpy())
                    vs[i].append(v.reshape(shape).cpu().numpy())
                x = s.reshape(shape)
        cat = lambda parts: [np.concatenate(p) for p in parts]
        return EmulatorRun([l.desc.name for l in self.layers], cat(outs),
                           cat(us) if record_states else None, cat(vs) if record_states else None)
