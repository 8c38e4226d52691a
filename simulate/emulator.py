"""A bit-exact, batched emulator of Lava's fixed-point models for netx networks.

It computes what ``netx.hdf5.Network`` run under ``Loihi2SimCfg(select_tag=
'fixed_pt')`` computes (Dense: ``PyDenseModelBitAcc``; with delays:
``PyDelayDenseModelBitAcc``; Conv: ``PyConvModelFixed``; neurons:
``PyLifModelBitAcc`` / ``PyLifResetModelBitAcc``), for a whole batch of samples
at once, in integers, with torch (CPU, or the GPU when asked). Each layer
kind computes its own synapses (``Layer.emulator_synapses`` in
``lavasparse.layers``); this module runs the neurons and the time.

Time. Samples run end to end, ``reset_interval = T`` steps apart, as
``lavasparse.deploy.lava_runner`` runs them in Lava. Layer l (1-based over the
layers with neurons) is reset on the step it first sees sample k, its *window*
k; before its first window it runs ``l + o - 1`` lead-in steps (o = 1 when the
input enters a synapse, 0 for an input neuron). A synapse with delay d carries
the spike of its source at window step j to window step j + d: with no delays
and no recurrence, each window depends only on the same window upstream, and
the emulator runs every window of a batch in parallel. Delays and recurrent
weights reach across windows: a spike late in sample k lands in sample k + 1,
as it does in Lava (and on the chip with these resets). The emulator keeps
that exact:
  - each layer's spike stream is carried from batch to batch (the last
    ``max delay + 1`` steps), and the lead-in steps are run as Lava runs them,
    bias, resets and all;
  - a recurrent layer runs all windows of a batch in parallel from a guessed
    history of its own spikes (silence), then walks the windows in order and
    reruns any window whose true history differs from the guess. The result is
    what a sequential run gives; the cost is one extra window per window that
    starts with a different history.

A potential readout (``NetDescription.readout``) runs as any layer; its
voltage at the end of each window is kept for the class
(``EmulatorRun.readout_potential``).

What it does not model it refuses with ``UnsupportedNetwork`` rather than
return numbers that might be wrong: sums that overflow Lava's int32 (or its
float32 conv), per-neuron decays or thresholds, and anything ``read_network``
rejects (SDNN, RF neurons, ...).

Semantics mirrored from lava-nc 0.10.0 / lava-dl 0.6.0 (read from their source):
  - netx's ``optimize_weight_bits`` (dense only; a recurrent layer's input and
    recurrent weights are optimised together, with one exponent): weights
    shifted left by ``scale_bits``, exponent ``-scale_bits``; then Dense's
    ``clip_weights`` to 8 bits and ``truncate_weights`` to ``num_weight_bits``
    (each matrix with its own sign mode); each step
    ``a = (W @ s) >> -exp`` (arithmetic shift, i.e. floor). With delays, each
    delay's sum is shifted by itself, and the sum of delay d reaches the neuron
    d steps later. netx's RecurrentDense with delays passes no exponent: 0.
  - Binary synapses count a non-zero input as 1 (``s_in.astype(bool)``);
    graded ones (``input_message_bits > 0``) multiply by the payload.
  - Conv: raw integer weights (netx passes no exponent), correlation as
    SLAYER's conv, computed here in float32 (exact below 2**24, refused
    above), result wrapped to signed 24 bits as Lava's ``signed_clamp`` does
    (a modulo, not a saturation). netx ignores conv delays.
  - LIF: ``u = sign(u*(4096-du)) * (|u*(4096-du)| >> 12) + (a << 6)``, wrapped to
    24 bits as Lava wraps it; ``v = decay(v, dv) + u + (bias << 6)`` clipped to
    +-(2**23 - 1); spike when ``v > vth << 6``; ``v = 0`` after a spike.
    netx sets du = iDecay - 1 and Lava adds ds_offset = 1: the decay is iDecay.
  - Graded spikes: netx 0.6.0 cannot read a neuron's ``messageBits`` (so
    ``read_network`` refuses it); graded input is what remains, and it is
    emulated.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from lavasparse.deploy.lava_runner import InputBatch, check_input, predict
from lavasparse.export.netx_format import NetDescription
from lavasparse.layers import Layer, Synapse, UnsupportedNetwork
from lavasparse.layers.base import exact_float

UV_BITS = 24
MAX_UV = 2 ** (UV_BITS - 1)


@contextmanager
def _naming(path) -> Iterator[None]:
    """Prefix any UnsupportedNetwork raised inside with the network's file,
    so that every refusal names it (the layer-level helpers do not know it)."""
    try:
        yield
    except UnsupportedNetwork as e:
        text = str(e)
        if text.startswith(f"{path}:"):
            raise
        raise UnsupportedNetwork(f"{path}: {text}") from None


@dataclass
class _Neuron:
    du: int
    dv: int
    vth: int
    bias: torch.Tensor | None   # effective bias (bias_mant << 6), shaped like the layer


def _neuron(layer: Layer, device) -> _Neuron:
    n = layer.neuron
    for key, value in (("iDecay", n.i_decay), ("vDecay", n.v_decay), ("vThMant", n.v_th_mant)):
        if np.asarray(value).size != 1:
            raise UnsupportedNetwork(f"layer {layer.name}: per-neuron {key} is not emulated")
    bias = None
    if layer.bias is not None:
        b = np.asarray(layer.bias).astype(np.int64)
        try:   # the reader keeps it broadcastable: one value, per channel (C, 1, 1) or per neuron
            full = np.broadcast_to(b, layer.shape)
        except ValueError:
            raise UnsupportedNetwork(f"layer {layer.name}: bias of shape {b.shape} does not fit {layer.shape}") from None
        # netx casts bias_mant to int32 and Lava uses bias_exp = 6.
        bias = torch.as_tensor((full.astype(np.int32).astype(np.int64) << 6).reshape(-1), device=device)
    return _Neuron(int(n.i_decay), int(n.v_decay), int(n.v_th_mant), bias)


def lif_dynamics(a_in: torch.Tensor, neuron: _Neuron, record_states: bool = False,
                 rec: Synapse | None = None, rec_history: torch.Tensor | None = None,
                 reset: list[bool] | None = None):
    """Run the fixed-point LIF over time, time-major: ``a_in`` (T, B, n) holds
    integers (in an integer or float dtype). Returns spikes (T, B, n) bool and,
    if asked, (u, v) each (T, B, n) int64.

    ``rec`` adds a recurrent synapse fed by the layer's own spikes, with
    ``rec_history`` (rec.history + 1, B, n) the spikes before the first step.
    ``reset[t]`` zeroes u and v before step t (Lava's LIFReset); without it the
    states start at zero.

    The states are float64 holding exact integers (|u * (4096 - du)| < 2**36 and
    scaling by 1/4096 is exact), which vectorises better than int64 division:
    ``trunc(u * (4096 - du) / 4096)`` is Lava's ``sign(p) * (|p| >> 12)``.
    """
    steps, b, n = a_in.shape
    max_a = int(a_in.abs().max()) if a_in.numel() else 0
    rec_max = 0
    if rec is not None:
        rec_max = rec.bound(1) * 2 ** max(rec.exponent, 0)
        like = exact_float(a_in.new_zeros(()), rec.abs_sum, "recurrent synapse")
        rec_dtype = like.dtype
        rec_w = rec.tensors(like)
        hist_len = rec.history + 1
        history = torch.cat([rec_history.to(rec_dtype), torch.zeros(steps, b, n, dtype=rec_dtype,
                                                                     device=a_in.device)])
    # Lava shifts the activation left by 6 in int32 and adds it to the decayed
    # current (|u| < 2**23): inputs below 2**24 can never overflow there.
    if max_a + rec_max >= 2 ** 24:
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
    u_bound = steps * (max_a + rec_max) * 64
    may_wrap = u_bound >= MAX_UV
    may_clip = may_wrap or steps * (u_bound + max_bias) >= MAX_UV - 1
    for t in range(steps):
        if reset is not None and reset[t]:
            u.zero_()
            v.zero_()
        u.mul_(cu).trunc_()
        u.add_(act[t])
        if rec is not None:
            for w, d in zip(rec_w, rec.delays):
                # spikes of step t - 1 - d; row hist_len + t - 1 - d of the history
                u.add_(rec.shift(torch.matmul(history[hist_len + t - 1 - d], w.T)).to(torch.float64) * 64)
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
        if rec is not None:
            history[hist_len + t] = s
        if record_states:
            us[t], vs[t] = u.to(torch.int64), v.to(torch.int64)
    return spikes, (us, vs)


@dataclass
class _Layer:
    desc: Layer
    neuron: _Neuron
    synapse: Synapse
    rec: Synapse | None = None
    lead_in: int = 0           # steps this layer runs before its first window


@dataclass
class EmulatorRun:
    """Per-layer spikes (N, *shape, T) int8 in (C, H, W) order; states if recorded."""

    layer_names: list[str]
    spikes: list[np.ndarray]
    currents: list[np.ndarray] | None = None
    voltages: list[np.ndarray] | None = None
    readout_potential: np.ndarray | None = None   # a potential readout's v at each window's end, (N, *shape)

    @property
    def predictions(self) -> np.ndarray:
        return predict(self.spikes[-1], self.readout_potential)


def _stream(windows: torch.Tensor) -> torch.Tensor:
    """(T, B, ...) windows -> (B*T, ...) in time order."""
    return windows.transpose(0, 1).reshape(-1, *windows.shape[2:])


def _with_history(tail: torch.Tensor, windows: torch.Tensor, h: int) -> torch.Tensor:
    """Each window preceded by the h steps before it: (h + T, B, ...) from the
    stream's last h steps before the batch, ``tail`` (h, ...), and the batch's
    windows (T, B, ...)."""
    if h == 0:
        return windows
    steps, b = windows.shape[:2]
    full = torch.cat([tail[tail.shape[0] - h:], _stream(windows)])
    idx = (torch.arange(b, device=full.device)[None, :] * steps
           + torch.arange(h + steps, device=full.device)[:, None])
    return full[idx]


def _advance(tail: torch.Tensor, windows: torch.Tensor, h: int) -> torch.Tensor:
    """The stream's last h steps once the batch's windows (T, B, ...) follow
    ``tail``; only the windows that reach into those steps are copied."""
    if h == 0:
        return tail[:0]
    k = min(windows.shape[1], -(-h // windows.shape[0]))
    return Emulator._tail(torch.cat([tail, _stream(windows[:, windows.shape[1] - k:])]), h)


class Emulator:
    """Batched fixed-point emulation of a netx description; see the module doc.

    ``input_message_bits > 0`` makes the first synapse graded, as
    ``netx.hdf5.Network(input_message_bits=...)`` does: payloads are
    multiplied, not counted as 1.
    """

    def __init__(self, desc: NetDescription, device: str | torch.device = "cpu", input_message_bits: int = 0):
        with _naming(desc.path):
            self._build(desc, device, input_message_bits)

    def _build(self, desc: NetDescription, device, input_message_bits: int) -> None:
        self.desc = desc
        self.input_message_bits = input_message_bits
        self.device = torch.device(device)
        self.layers: list[_Layer] = []
        offset = 0 if desc.has_input_neuron else 1
        for l, layer in enumerate(desc.spiking_layers, start=1):
            neuron = _neuron(layer, self.device)
            syn, rec = layer.emulator_synapses(graded=l == 1 and input_message_bits > 0)
            self.layers.append(_Layer(layer, neuron, syn, rec, lead_in=l + offset - 1))
        # Steps of each stream (the input, then each layer's spikes) that reach
        # across a window boundary: what the next layer's delays and the layer's
        # own recurrence need.
        self.carry = [0] * (len(self.layers) + 1)
        for i, layer in enumerate(self.layers):
            self.carry[i] = max(self.carry[i], layer.synapse.history)
            if layer.rec is not None:
                self.carry[i + 1] = max(self.carry[i + 1], layer.rec.history + 1)
        self.streaming = any(self.carry)

    def _lead_in(self, steps: int) -> list[torch.Tensor]:
        """Each stream's carried tail after the lead-in: (carry, n) per stream,
        zeros before Lava's first step. Layer l's lead-in runs steps 1 ..
        lead_in of Lava's time, with LIFReset's resets where they fall."""
        dev = self.device
        in_n = int(np.prod(self.desc.input_shape))
        stream = torch.zeros(0, in_n, dtype=torch.float64, device=dev)   # the input has no lead-in
        tails = [self._tail(stream, self.carry[0])]
        for i, layer in enumerate(self.layers):
            syn, n = layer.synapse, layer.desc.num_neurons
            length = layer.lead_in
            if length == 0:
                stream = torch.zeros(0, n, dtype=torch.float64, device=dev)
            else:
                # Lead-in step p receives the source's step p - 1 - d.
                src = torch.cat([torch.zeros(syn.history + 1, stream.shape[1], dtype=stream.dtype, device=dev), stream])
                src = src.reshape(src.shape[0], 1, *self._in_shape(i))
                a_in = syn(src, length)
                reset_at = (layer.lead_in + 1) % steps   # Lava time t resets when t % T == offset % T
                reset = [((p + 1) % steps) == reset_at for p in range(length)]
                hist = torch.zeros(layer.rec.history + 1, 1, n, device=dev) if layer.rec is not None else None
                s, _ = lif_dynamics(a_in, layer.neuron, False, layer.rec, hist, reset)
                stream = s[:, 0].to(torch.float64)
            tails.append(self._tail(stream, self.carry[i + 1]))
        return tails

    def _in_shape(self, i: int) -> tuple[int, ...]:
        return tuple(self.desc.input_shape) if i == 0 else tuple(self.layers[i - 1].desc.shape)

    @staticmethod
    def _tail(stream: torch.Tensor, h: int) -> torch.Tensor:
        if stream.shape[0] >= h:
            return stream[stream.shape[0] - h:]
        pad = torch.zeros(h - stream.shape[0], *stream.shape[1:], dtype=stream.dtype, device=stream.device)
        return torch.cat([pad, stream])

    def _recurrent_layer(self, layer: _Layer, a_in: torch.Tensor, tail: torch.Tensor, record_states: bool):
        """All windows from a silent history, then in order: rerun each window
        whose true history (the stream before it) differs from the one it ran with."""
        steps, b, n = a_in.shape
        hl = layer.rec.history + 1
        guess = torch.zeros(hl, b, n, dtype=tail.dtype, device=a_in.device)
        guess[:, 0] = tail[tail.shape[0] - hl:]
        s, (u, v) = lif_dynamics(a_in, layer.neuron, record_states, layer.rec, guess)
        stream = tail[tail.shape[0] - hl:].clone()
        for i in range(b):
            true = stream[stream.shape[0] - hl:]
            if i > 0 and not torch.equal(true, guess[:, i]):
                si, (ui, vi) = lif_dynamics(a_in[:, i:i + 1], layer.neuron, record_states, layer.rec,
                                            true[:, None])
                s[:, i] = si[:, 0]
                if record_states:
                    u[:, i], v[:, i] = ui[:, 0], vi[:, 0]
            stream = torch.cat([stream, s[:, i].to(stream.dtype)])[-max(hl, 1):]
        return s, (u, v)

    def run(self, inputs: np.ndarray | InputBatch, batch_size: int = 256, record_states: bool = False) -> EmulatorRun:
        """Run ``inputs`` (N, *input_shape, T) (what enters the first layer, as
        for Lava) in batches of ``batch_size`` samples, in order."""
        x_all = check_input(inputs, self.desc, input_message_bits=self.input_message_bits).values
        with _naming(self.desc.path):
            return self._run(x_all, batch_size, record_states)

    @torch.no_grad()
    def _run(self, x_all: np.ndarray, batch_size: int, record_states: bool) -> EmulatorRun:
        steps = x_all.shape[-1]
        outs: list[list[np.ndarray]] = [[] for _ in self.layers]
        us: list[list[np.ndarray]] = [[] for _ in self.layers]
        vs: list[list[np.ndarray]] = [[] for _ in self.layers]
        readout_at = len(self.layers) - 1 if self.desc.readout == "potential" else None
        finals: list[np.ndarray] = []   # the readout's v at each window's end
        tails = self._lead_in(steps) if self.streaming else None
        # Internally time-major, (T, B, *shape): each step's slice is contiguous.
        to_sample_major = lambda a: np.moveaxis(a.cpu().numpy(), 0, -1)
        for start in range(0, len(x_all), batch_size):
            x = torch.as_tensor(np.moveaxis(x_all[start:start + batch_size], -1, 0), device=self.device)
            for i, layer in enumerate(self.layers):
                b = x.shape[1]
                h = layer.synapse.history
                src = x
                if self.streaming:
                    flat = x.reshape(steps, b, -1).to(torch.float64)   # exact for any int32 payload
                    src = _with_history(tails[i], flat, h).reshape(h + steps, b, *x.shape[2:])
                    tails[i] = _advance(tails[i], flat, self.carry[i])
                a_in = layer.synapse(src, steps)
                states = record_states or i == readout_at
                if layer.rec is not None:
                    s, (u, v) = self._recurrent_layer(layer, a_in, tails[i + 1], states)
                else:
                    s, (u, v) = lif_dynamics(a_in, layer.neuron, states)
                shape = (s.shape[0], s.shape[1], *layer.desc.shape)
                x = s.reshape(shape)
                outs[i].append(to_sample_major(x.to(torch.int8)))
                if i == readout_at:
                    finals.append(v[-1].reshape(shape[1:]).cpu().numpy())
                if record_states:
                    us[i].append(to_sample_major(u.reshape(shape)))
                    vs[i].append(to_sample_major(v.reshape(shape)))
            if self.streaming:
                last = len(self.layers)
                flat = x.reshape(steps, x.shape[1], -1).to(torch.float64)
                tails[last] = _advance(tails[last], flat, self.carry[last])
        cat = lambda parts: [np.concatenate(p) for p in parts]
        return EmulatorRun([l.desc.name for l in self.layers], cat(outs),
                           cat(us) if record_states else None, cat(vs) if record_states else None,
                           np.concatenate(finals) if readout_at is not None else None)
