"""The ISI-modulated synapse of Adams et al. (IMSNN) in torch: forward, and
the three backward rules. The layer kind that builds, writes, reads,
emulates, counts and places it is ``isi.py``, and the gate that training, the
export and the emulator share is ``isi_gate.py``; this module is imported only
where a network is built for training (reading and checking files load no
torch).

Reconstruction (the paper lost its equations in extraction; see
``../shared/papers/NOTES.md``). Every choice marked [A] is ours.

Forward, per presynaptic neuron i (its spikes s_i[t] in {0, 1}: the interval
and its gradient below are those of binary spikes),
postsynaptic neuron j, step t:

    phi_i[t]   = t - l_i[t-1]          steps since i's previous spike       (eq. 4)
    l_i[t]     = t if s_i[t] else l_i[t-1],   l_i[-1] = -1
    G_i(phi)   = exp(-(phi - mu_i)^2 / (2 w_i^2))                          (eq. 5)
    z_j[t]     = sum_i h_ji G_i(phi_i[t]) s_i[t]      the synaptic input

  - [A] mu and w belong to the presynaptic neuron (``mu_i``, ``w_i``), not to
    each synapse as in the paper: only then does theta_ji = h_ji G_i(phi_i)
    factorise into a graded spike G_i(phi_i) (a look-up in the sender) and an
    ordinary dense synapse of heights h, which Loihi 2 can run (NOTES.md,
    "Deployability"). It also makes the layer one matrix product.
  - [A] The ISI is a counter that starts at 0 with the run and counts steps
    (l_i[-1] = -1): a neuron's first spike, at step t, sees phi = t + 1, and
    two spikes in consecutive steps see phi = 1. NOTES.md's reading (a first
    spike sees 0) differs only in the first spike's weight.
  - h is trained (SLAYER's dense weight, with its 8-bit quantisation in the
    forward pass); mu and w are fixed buffers, drawn at initialisation from
    ``IsiConfig``'s ranges ([A]: the paper's ranges are lost).
  - G is tabulated over phi = 1 .. T (``isi_table``), never materialised
    per sample, step and synapse.

Backward. The gradient of z with respect to a presynaptic spike has two parts:

  - direct:  dz_j[t] / ds_i[t] = h_ji G_i(phi_i[t]), at every step (the
    weight a spike there would carry), as for an ordinary synapse;
  - ISI:     a spike at t is the previous spike of i's next spike n(t) > t,
    so it sets that spike's interval: phi_i[n] = n - l_i[n-1], and
    d phi_i[n] / d s_i[t] = -phi_i[t] (a spike added at t shortens the next
    interval by phi_i[t]; removing the one at t lengthens it by as much: the
    finite difference, exactly). With g_i[n] = dL/dphi_i[n] =
    s_i[n] G_i'(phi_i[n]) sum_j h_ji dL/dz_j[n], the ISI part of dL/ds_i[t]
    is -phi_i[t] g_i[n(t)] (0 when i spikes no more).

The rules differ only in which g_i[n] they let through (eqs. 9, 10):

  - ``bptt``:   all of them: the plain gradient of the forward above;
  - ``imsnn``:  only g < 0, where a descent step lengthens i's interval (fewer
    spikes); where it would shorten it, the ISI part is suppressed and the
    direct part still flows, so earlier layers still learn;
  - ``imsnnc``: only g > 0, the paper's ablation (more spikes).

  [A] The sign is tested per presynaptic neuron and spike (dL/dphi_i[n], the
  ISI being the neuron's), not per synapse.

``tests/test_isi.py`` checks each rule against a naive float64 autograd
reference of the recursions above.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from lava.lib.dl.slayer.synapse import Conv, Dense

from lavasparse.defaults import ISI_RULES

from .base import exact_float
from .isi_gate import _per_step, intervals, isi_table, payload_table
from .quantised import forward_weight


class IsiGateFunction(torch.autograd.Function):
    """The gates' payloads s G(phi) (batch, neurons, T) from binary spikes,
    with ``table`` and ``slope`` (neurons, K) read at phi; see the module doc
    for the backward rules. What receives the payloads (a dense or a conv
    synapse) is ordinary autograd after it: its gradient with respect to the
    payload is the sum_j h_ji dL/dz_j[t] of the module doc."""

    @staticmethod
    def forward(ctx, spikes, table, slope, rule):
        phi, nxt = intervals(spikes)
        gain = _per_step(table, phi)
        ctx.save_for_backward(spikes, slope, phi, nxt, gain)
        ctx.rule = rule
        return spikes * gain

    @staticmethod
    def backward(ctx, grad_payload):
        spikes, slope, phi, nxt, gain = ctx.saved_tensors
        grad_phi = spikes * _per_step(slope, phi) * grad_payload   # dL/dphi_i[t], at i's spikes
        if ctx.rule == "imsnn":
            grad_phi = grad_phi.clamp(max=0)
        elif ctx.rule == "imsnnc":
            grad_phi = grad_phi.clamp(min=0)
        at_next = torch.gather(F.pad(grad_phi, (0, 1)), 2, nxt)   # g at the next spike (0 past the last)
        return grad_payload * gain - phi.to(grad_payload.dtype) * at_next, None, None, None


def floor_to_state(z: torch.Tensor, state_scale: int) -> torch.Tensor:
    """floor(z * state_scale) / state_scale, the target's integer synaptic
    input (Lava shifts the graded sum right: a floor), with z's gradient
    (straight through)."""
    return z + (torch.floor(z * state_scale) / state_scale - z).detach()


def isi_dense(spikes, weight, table, slope, rule, state_scale=None, exact_unit=None):
    """z = h (s G(phi)), (batch, out, T). With ``state_scale`` (SLAYER's
    1 << 6) the forward value is the target's, ``floor_to_state``, and
    ``exact_unit`` says that every product h G is a whole number of
    1 / exact_unit, so that the sum is exact (float64 where float32 could
    round)."""
    payload = IsiGateFunction.apply(spikes, table, slope, rule)
    linear = lambda w, p: torch.einsum("ji,bit->bjt", w, p)   # noqa: E731
    if state_scale is None:
        return linear(weight, payload)
    return floor_to_state(_exact_sum(linear, weight, payload, exact_unit, "ISI dense layer"),
                          state_scale).to(payload.dtype)


def _exact_sum(op, weight, payload, unit: int, what: str):
    """op(weight, payload) (a dense or conv sum over the weight's axes 1..),
    where every product is a whole number of 1 / ``unit``: in float32 where
    its sums stay below 2^24 of those units, else float64 (``exact_float``)."""
    bound = int(float(weight.detach().abs().sum(dim=tuple(range(1, weight.ndim))).max()) * unit) + 1
    dtype = exact_float(payload, bound, what).dtype
    return op(weight.to(dtype), payload.to(dtype))


class _IsiSynapse:
    """What the ISI dense and conv synapses share: the rule, mu and width
    (buffers, saved with the weights; one per ``count`` ``what``), the
    payload's fraction bits and the state scale, their tables, and the
    weight through SLAYER's hook. Listed before SLAYER's synapse class."""

    def _isi_setup(self, rule, mu, width, count: int, what: str, payload_fraction_bits, state_scale) -> None:
        _check_isi(rule, mu, width, count, what, payload_fraction_bits, state_scale)
        self.rule, self.payload_fraction_bits, self.state_scale = rule, payload_fraction_bits, state_scale
        self.register_buffer("mu", mu.clone().float())
        self.register_buffer("width", width.clone().float())


    def _tables(self, dtype, steps: int):
        """G (as the gates send it, when the forward is the target's) and
        dG/dphi over phi = 0 .. steps, in ``dtype``."""
        table, slope = isi_table(self.mu.to(dtype), self.width.to(dtype), steps)
        if self.payload_fraction_bits is not None:
            table = payload_table(table, self.payload_fraction_bits).to(dtype) / 2 ** self.payload_fraction_bits
        return table, slope

    @property
    def _exact_unit(self) -> int:
        """Heights are whole 1/state_scale's (SLAYER's 8-bit hook: even ones),
        payloads whole 2^-b's: every product a whole 1/(state_scale 2^b)."""
        return self.state_scale * 2 ** self.payload_fraction_bits


class IsiDense(_IsiSynapse, Dense):
    """SLAYER's dense synapse (its weight = the heights h, its 8-bit
    quantisation hook, its export fields) whose spikes are modulated by
    their presynaptic intervals. ``mu`` and ``width`` (in steps, one per
    input neuron) are buffers, saved with the weights.

    With ``payload_fraction_bits`` b and ``state_scale`` (SLAYER's 1 << 6, which
    makes the quantised heights whole numbers) the forward pass is the
    target's: G is the graded payload round(G * 2^b) / 2^b the sender looks
    up, and the synaptic input is floored to the state's integers; the
    gradients go straight through both. None: float G and z (the reference
    the tests compare with)."""

    def __init__(self, in_neurons: int, out_neurons: int, mu: torch.Tensor, width: torch.Tensor, rule: str,
                 weight_scale: float = 1, pre_hook_fx=None, payload_fraction_bits: int | None = None,
                 state_scale: int | None = None):
        super().__init__(in_neurons, out_neurons, weight_scale=weight_scale, pre_hook_fx=pre_hook_fx)
        self._isi_setup(rule, mu, width, in_neurons, "input neuron", payload_fraction_bits, state_scale)

    def forward(self, x):
        if x.ndim != 3:
            raise ValueError(f"an ISI dense synapse takes (batch, neurons, time), got {tuple(x.shape)}")
        weight = forward_weight(self)
        weight = weight.reshape(weight.shape[0], -1)
        table, slope = self._tables(x.dtype, x.shape[-1])
        if self.payload_fraction_bits is None:
            return isi_dense(x, weight, table, slope, self.rule)
        return isi_dense(x, weight, table, slope, self.rule, self.state_scale, self._exact_unit)


class IsiConv(_IsiSynapse, Conv):
    """SLAYER's conv synapse (its weight = the heights h, its 8-bit hook)
    behind ISI gates: ``mu`` and ``width`` are one per input channel [A]
    (every neuron of a feature map shares its channel's Gaussian: the
    paper's mu and w tied within a kernel, and per presynaptic neuron, so
    that the gate still sends the payload; the module doc's reasons). With
    ``payload_fraction_bits`` and ``state_scale`` the forward pass is the
    target's, as ``IsiDense``'s."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, padding: int,
                 mu: torch.Tensor, width: torch.Tensor, rule: str, weight_scale: float = 1, pre_hook_fx=None,
                 payload_fraction_bits: int | None = None, state_scale: int | None = None):
        super().__init__(in_channels, out_channels, kernel, stride=stride, padding=padding, weight_scale=weight_scale,
                         pre_hook_fx=pre_hook_fx)
        self._isi_setup(rule, mu, width, in_channels, "input channel", payload_fraction_bits, state_scale)

    def forward(self, x):
        if x.ndim != 5:
            raise ValueError(f"an ISI conv synapse takes (batch, channels, height, width, time), got {tuple(x.shape)}")
        n, c, h, w, steps = x.shape
        table, slope = self._tables(x.dtype, steps)
        per_neuron = lambda t: t.repeat_interleave(h * w, dim=0)   # noqa: E731 - channel c's row for each of its pixels
        payload = IsiGateFunction.apply(x.reshape(n, c * h * w, steps), per_neuron(table), per_neuron(slope),
                                        self.rule).reshape(x.shape)
        if self.state_scale is None:
            return super().forward(payload)
        conv = lambda w, p: F.conv3d(p, w, None, self.stride, self.padding, self.dilation, self.groups)   # noqa: E731
        z = _exact_sum(conv, forward_weight(self), payload, self._exact_unit, "ISI conv layer")
        return floor_to_state(z, self.state_scale).to(x.dtype)


def _check_isi(rule, mu, width, count, what, payload_fraction_bits, state_scale):
    if (payload_fraction_bits is None) != (state_scale is None):
        raise ValueError("payload_fraction_bits and state_scale go together (the target's integers) or not at all")
    if rule not in ISI_RULES:
        raise ValueError(f"unknown ISI rule {rule!r}: expected one of {ISI_RULES}")
    if mu.shape != (count,) or width.shape != (count,):
        raise ValueError(f"mu and width need one value per {what} ({count}), "
                         f"got {tuple(mu.shape)} and {tuple(width.shape)}")
    if not (width > 0).all():
        raise ValueError("ISI widths must be positive")
