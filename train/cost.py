"""What an inference costs on the target, computed from a SLAYER network while
it trains: spikes, synaptic operations and dynamic energy, per sample, with
gradients, so that training can lower what the chip pays.

Synaptic operations follow the profiler (``simulate/profile.py``): every spike
that enters a synaptic layer, the input layer's included, costs one op per
synapse it reaches, and a synapse exists only where its weight survives
export, i.e. SLAYER's 8-bit quantisation (``pre_hook_fx``, the function the
netx export writes with) leaves it non-zero. The fan-out that counts is that
hard count; its gradient is that of a smooth gate ``tanh(|w| / width)``
(straight-through), so small weights are pushed to zero, in proportion to how
often their input spikes. ``tests/test_cost.py`` checks that the estimate equals
the profiler's figures on the target for an exported network.

Units: spikes and synaptic ops per sample; energy in nJ per sample, from an
``EnergyWeights`` (J per operation, taken from the report's energy profile).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lavasparse.defaults import COSTS
from lavasparse.layers.quantised import exported_weight

from .cuba_cpu import match_numba_threads, numba
from .energy_weights import EnergyWeights
from .event_synapse import count_events


# Width of the gate's gradient, in quantisation steps (SLAYER's 2 / w_scale =
# 1/32 of a unit weight). Trained first-layer weights of 784-500-10 sit at a
# few steps (init std 0.04 = 1.3 steps at weight scale 2); 4 steps lets the
# gradient reach most of them and leaves the large, useful ones alone.
GATE_WIDTH_STEPS = 4.0


@dataclass
class InferenceCost:
    """Per-sample counts of one batch, each (batch, layers): ``spikes`` of
    every spiking layer, ``synops`` of every synaptic layer (the ops its
    incoming spikes cost), ``neurons`` per spiking layer and ``steps``."""

    spikes: torch.Tensor
    synops: torch.Tensor
    neurons: list[int]
    steps: int

    @property
    def hidden_spikes(self) -> torch.Tensor:
        return self.spikes[:, :-1].sum(dim=1)

    @property
    def total_synops(self) -> torch.Tensor:
        return self.synops.sum(dim=1)

    @property
    def neuron_updates(self) -> int:
        return sum(self.neurons) * self.steps

    def energy_nj(self, weights: EnergyWeights) -> torch.Tensor:
        """Dynamic energy per sample (nJ), as ``EnergyProfile.dynamic_j``."""
        joules = (self.total_synops * weights.synop_j + self.spikes.sum(dim=1) * weights.spike_j
                  + self.neuron_updates * weights.neuron_update_j)
        return 1e9 * joules

    def term(self, cost: str, weights: EnergyWeights | None = None) -> torch.Tensor:
        """The batch mean of ``cost`` (one of COSTS): hidden spikes (Allred et
        al.'s spikeCount), synaptic ops, or dynamic energy in nJ."""
        if cost == "spikes":
            return self.hidden_spikes.mean()
        if cost == "synops":
            return self.total_synops.mean()
        if cost == "energy":
            if weights is None:
                raise ValueError("the energy cost needs the energy profile's figures (EnergyWeights)")
            return self.energy_nj(weights).mean()
        raise ValueError(f"unknown cost {cost!r}: expected one of {COSTS}")


class _StraightThroughGate(torch.autograd.Function):
    """Forward: the hard mask as given. Backward: the gradient of the smooth
    gate tanh(|w| / width) (``gate_gradient``), without the forward tanh,
    which the value never needed (measured: the gate was most of the synops
    cost's time per training step on a CPU)."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, hard: torch.Tensor, width: float) -> torch.Tensor:
        ctx.save_for_backward(weight)
        ctx.width = width
        return hard

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (weight,) = ctx.saved_tensors
        return gate_gradient(weight, grad, ctx.width), None, None


def gate_gradient(weight: torch.Tensor, grad: torch.Tensor, width: float) -> torch.Tensor:
    """grad times d tanh(|w| / width) / dw = grad * sech^2(x) / width * sgn(w)
    with x = |w| / width, and sech^2(x) = 4e / (1 + e)^2, e = exp(-2x).

    Why not 1 - tanh(x)^2, autograd's form: torch's tanh takes 2.5x its exp
    on a CPU (1.06 against 0.41 ms for 784x500 weights at one thread, a
    third of what the cost term added to a training step), and 1 - tanh^2
    cancels to 0 for x above 9 where this form keeps the tail. The two
    agree to a few float32 roundings (``tests/test_cost.py``).

    On the CPU the arithmetic around torch's exp is two compiled passes that
    give the floats of the torch chain (``_gate_gradient_torch``, which other
    devices run; a GPU's exp and scalar division round their own way). A
    dense layer's gradient arrives as a row of fan-out gradients broadcast
    over the outputs, which the pass reads as a row; a conv's arrives whole."""
    if numba is None or weight.device.type != "cpu" or weight.dtype != torch.float32 or grad.dtype != torch.float32:
        return _gate_gradient_torch(weight, grad, width)
    match_numba_threads()
    w = weight.detach().reshape(weight.shape[0], -1).contiguous()
    width32 = np.float32(width)
    out = torch.empty_like(w)
    _minus_twice_scaled_magnitude(w.numpy(), width32, out.numpy())
    out.exp_()   # torch's own exp: vectorised, where numba's is a libm call per entry
    grad = grad.expand_as(weight).reshape(w.shape)
    # A row of fan-out gradients broadcast over the outputs: read the row.
    rows = grad[:1].contiguous() if grad.stride(0) == 0 else grad.contiguous()
    _gate_rows(out.numpy(), rows.numpy(), w.numpy(), width32)
    return out.reshape(weight.shape)


def _gate_gradient_torch(weight: torch.Tensor, grad: torch.Tensor, width: float) -> torch.Tensor:
    """``gate_gradient`` in torch's ops (any device), the order the compiled passes follow."""
    e = weight.abs().div_(width).mul_(-2).exp_()
    sech2 = e.add(1).square_().reciprocal_().mul_(e.mul_(4))
    return sech2.mul_(grad).div_(width).mul_(weight.sgn())


def nonzero_mask(values: torch.Tensor) -> torch.Tensor:
    """1.0 where ``values`` is non-zero, else 0.0, in its dtype: one
    compiled pass on the CPU (torch's compare-then-convert is two, a tenth
    of the cost term's time per step on 784-500-10)."""
    if numba is None or values.device.type != "cpu" or values.dtype != torch.float32:
        return (values != 0).to(values.dtype)
    match_numba_threads()
    flat = values.reshape(values.shape[0], -1).contiguous()
    mask = torch.empty_like(flat)
    _nonzero_rows(flat.numpy(), mask.numpy())
    return mask.reshape(values.shape)


def surviving_synapses(block) -> torch.Tensor:
    """1.0 for every synapse of a SLAYER block whose weight exports non-zero,
    0.0 elsewhere, shaped like the weight; gradient of tanh(|w| / width)."""
    weight = block.synapse.weight
    hard = nonzero_mask(exported_weight(block.synapse))
    if not (weight.requires_grad and torch.is_grad_enabled()):
        return hard
    return _StraightThroughGate.apply(weight, hard, GATE_WIDTH_STEPS * 2.0 / block.neuron.w_scale)


def block_fanout(spec, block) -> torch.Tensor:
    """Synapses that survive export leaving each input neuron of a synaptic
    block, shaped ``spec.in_shape``: the kind's count (``spec.block_fanout``)
    of the block's gate."""
    return spec.block_fanout(surviving_synapses(block))


def per_sample(t: torch.Tensor) -> torch.Tensor:
    """Sum over every dim but the batch, without flattening (a reshape of a
    strided tensor copies it). The sums are counts (of spikes, or of
    spikes times surviving synapses), exact in float32 in any order below
    2^24 per sample."""
    return t.sum(dim=tuple(range(1, t.dim())))


def _window_counts(spikes: torch.Tensor) -> torch.Tensor:
    """Each neuron's spikes in the window, (B, *shape): with a gradient the
    sum of the spikes (SLAYER's are 0 or 1), else the count of non-zero
    entries, as the target counts events. Taken once per layer, for its
    spike count and the next layer's synops, so that its gradient reaches
    the spikes as one tensor (two uses cost an extra add and copy of the
    layer's spikes' size in the backward)."""
    return spikes.sum(dim=-1) if spikes.requires_grad else count_events(spikes)


def inference_cost(net, x: torch.Tensor, layer_spikes: list[torch.Tensor]) -> InferenceCost:
    """The counts of one batch: ``x`` the input spikes (B, *in_shape, T) and
    ``layer_spikes`` every spiking layer's spikes cut to its window
    (``SpikingNet.windowed``), as the target produces them. Differentiable
    through the spikes (SLAYER's surrogate) and the fan-out (the gate)."""
    if len(layer_spikes) != net.num_spiking_layers:
        raise ValueError(f"{len(layer_spikes)} spike tensors for {net.num_spiking_layers} spiking layers")
    steps = x.shape[-1]
    spikes, synops, neurons = [], [], []
    counts, spiking = _window_counts(x), iter(net.spike_trains(layer_spikes))   # a potential readout's: none
    for spec, block in zip(net.specs, net.blocks):
        if not spec.spiking:
            continue
        # Each spike that reaches this layer costs one op per surviving synapse it leaves by.
        fan = block_fanout(spec, block)
        synops.append(per_sample(counts.reshape(counts.shape[0], *spec.in_shape) * fan))
        counts = _window_counts(next(spiking))
        spikes.append(per_sample(counts))
        neurons.append(int(torch.tensor(spec.out_shape).prod()))
    return InferenceCost(torch.stack(spikes, dim=1), torch.stack(synops, dim=1), neurons, steps)


if numba is not None:
    @numba.njit(parallel=True, cache=True)
    def _nonzero_rows(values, out):   # pragma: no cover (compiled)
        one, zero = np.float32(1.0), np.float32(0.0)
        for o in numba.prange(values.shape[0]):
            for i in range(values.shape[1]):
                out[o, i] = one if values[o, i] != zero else zero

    @numba.njit(parallel=True, cache=True)
    def _minus_twice_scaled_magnitude(weight, width, out):   # pragma: no cover (compiled)
        """out = -2 (|w| / width), float32, rounded as torch's abs().div_().mul_(-2)."""
        minus_two = np.float32(-2.0)
        for o in numba.prange(weight.shape[0]):
            for i in range(weight.shape[1]):
                out[o, i] = (abs(weight[o, i]) / width) * minus_two

    @numba.njit(parallel=True, cache=True)
    def _gate_rows(e, grad, weight, width):   # pragma: no cover (compiled)
        """e[o, i] <- (grad * (4e / (1 + e)^2)) / width * sgn(w), float32
        throughout, each operation rounded as ``_gate_gradient_torch``'s
        chain rounds it on the CPU; ``grad`` has one row per output, or one
        row for all."""
        one, zero, four = np.float32(1.0), np.float32(0.0), np.float32(4.0)
        for o in numba.prange(e.shape[0]):
            g = grad[o] if grad.shape[0] > 1 else grad[0]
            for i in range(e.shape[1]):
                v = e[o, i]
                q = v + one
                sech2 = (one / (q * q)) * (v * four)
                w = weight[o, i]
                sign = one if w > zero else (-one if w < zero else zero)
                e[o, i] = ((sech2 * g[i]) / width) * sign
