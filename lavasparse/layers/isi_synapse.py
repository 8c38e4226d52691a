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
from lava.lib.dl.slayer.synapse import Dense

from lavasparse.defaults import ISI_RULES

from .base import exact_float
from .isi_gate import _per_step, intervals, isi_table, payload_table


class IsiDenseFunction(torch.autograd.Function):
    """z = h (s G(phi)); see the module doc for the backward rules.

    With ``state_scale`` (SLAYER's 1 << 6) the forward value is the target's
    integer synaptic input, floor(z * state_scale) / state_scale (Lava's
    Dense shifts the graded sum right, a floor); the backward is that of z
    (straight through). ``exact_unit``: every product h G is a whole number
    of 1 / exact_unit, so that the sum is computed exactly (float64 where
    float32 could round)."""

    @staticmethod
    def forward(ctx, spikes, weight, table, slope, rule, state_scale=None, exact_unit=None):
        phi, nxt = intervals(spikes)
        gain = _per_step(table, phi)
        payload = spikes * gain
        ctx.save_for_backward(spikes, weight, slope, phi, nxt, gain)   # payload = spikes * gain, remade in backward
        ctx.rule = rule
        if state_scale is None:
            return torch.einsum("ji,bit->bjt", weight, payload)
        # the sum in units of 1 / exact_unit is a whole number: in float32 where it is below 2^24, else float64
        bound = int(float(weight.abs().sum(dim=1).max()) * exact_unit) + 1
        z = torch.einsum("ji,bit->bjt", exact_float(weight, bound, "ISI dense layer"),
                         exact_float(payload, bound, "ISI dense layer"))
        return (torch.floor(z * state_scale) / state_scale).to(payload.dtype)

    @staticmethod
    def backward(ctx, grad_z):
        spikes, weight, slope, phi, nxt, gain = ctx.saved_tensors
        grad_weight = torch.einsum("bjt,bit->ji", grad_z, spikes * gain)
        grad_presynaptic = torch.einsum("ji,bjt->bit", weight, grad_z)   # sum_j h_ji dL/dz_j[t]
        grad_phi = spikes * _per_step(slope, phi) * grad_presynaptic   # dL/dphi_i[t], at i's spikes
        if ctx.rule == "imsnn":
            grad_phi = grad_phi.clamp(max=0)
        elif ctx.rule == "imsnnc":
            grad_phi = grad_phi.clamp(min=0)
        at_next = torch.gather(F.pad(grad_phi, (0, 1)), 2, nxt)   # g at the next spike (0 past the last)
        grad_spikes = grad_presynaptic * gain - phi.to(grad_presynaptic.dtype) * at_next
        return grad_spikes, grad_weight, None, None, None, None, None


class IsiDense(Dense):
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
        if (payload_fraction_bits is None) != (state_scale is None):
            raise ValueError("payload_fraction_bits and state_scale go together (the target's integers) or not at all")
        self.payload_fraction_bits, self.state_scale = payload_fraction_bits, state_scale
        if rule not in ISI_RULES:
            raise ValueError(f"unknown ISI rule {rule!r}: expected one of {ISI_RULES}")
        if mu.shape != (in_neurons,) or width.shape != (in_neurons,):
            raise ValueError(f"mu and width need one value per input neuron ({in_neurons}), "
                             f"got {tuple(mu.shape)} and {tuple(width.shape)}")
        if not (width > 0).all():
            raise ValueError("ISI widths must be positive")
        self.rule = rule
        self.register_buffer("mu", mu.clone().float())
        self.register_buffer("width", width.clone().float())

    def forward(self, x):
        if x.ndim != 3:
            raise ValueError(f"an ISI dense synapse takes (batch, neurons, time), got {tuple(x.shape)}")
        weight = self.weight if self._pre_hook_fx is None else self._pre_hook_fx(self.weight)
        weight = weight.reshape(weight.shape[0], -1)
        table, slope = isi_table(self.mu.to(x.dtype), self.width.to(x.dtype), x.shape[-1])
        if self.payload_fraction_bits is None:
            return IsiDenseFunction.apply(x, weight, table, slope, self.rule)
        levels = 2 ** self.payload_fraction_bits
        table = payload_table(table, self.payload_fraction_bits).to(x.dtype) / levels
        # heights are whole 1/state_scale's (SLAYER's 8-bit hook: even ones), payloads whole 1/levels
        return IsiDenseFunction.apply(x, weight, table, slope, self.rule, self.state_scale,
                                      self.state_scale * levels)
