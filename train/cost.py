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

import torch

from lavasparse.defaults import COSTS

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
    """Forward: the hard mask as given. Backward: the gradient of
    tanh(|w| / width), in the order autograd computes it for
    ``hard + soft - soft.detach()`` (so training is unchanged), but without
    the forward tanh, which the value never needed (measured: the gate was
    most of the synops cost's time per training step on a CPU)."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, hard: torch.Tensor, width: float) -> torch.Tensor:
        ctx.save_for_backward(weight)
        ctx.width = width
        return hard

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (weight,) = ctx.saved_tensors
        # (grad * (1 - soft * soft)) / width * sgn(w), in place: the same floats (products commute
        # exactly, 1 + -x is 1 - x), a quarter of the time (measured, 784x500 weights, one thread)
        soft = weight.abs().div_(ctx.width).tanh_()
        return soft.square_().neg_().add_(1).mul_(grad).div_(ctx.width).mul_(weight.sgn()), None, None


def surviving_synapses(block) -> torch.Tensor:
    """1.0 for every synapse of a SLAYER block whose weight exports non-zero,
    0.0 elsewhere, shaped like the weight; gradient of tanh(|w| / width)."""
    weight = block.synapse.weight
    with torch.no_grad():
        hard = (block.synapse.pre_hook_fx(weight) != 0).to(weight.dtype)
    if not (weight.requires_grad and torch.is_grad_enabled()):
        return hard
    return _StraightThroughGate.apply(weight, hard, GATE_WIDTH_STEPS * 2.0 / block.neuron.w_scale)


def block_fanout(spec, block) -> torch.Tensor:
    """Synapses that survive export leaving each input neuron of a synaptic
    block, shaped ``spec.in_shape``: the kind's count (``spec.block_fanout``)
    of the block's gate."""
    return spec.block_fanout(surviving_synapses(block))


def inference_cost(net, x: torch.Tensor, layer_spikes: list[torch.Tensor]) -> InferenceCost:
    """The counts of one batch: ``x`` the input spikes (B, *in_shape, T) and
    ``layer_spikes`` every spiking layer's spikes cut to its window
    (``SpikingNet.windowed``), as the target produces them. Differentiable
    through the spikes (SLAYER's surrogate) and the fan-out (the gate)."""
    if len(layer_spikes) != net.num_spiking_layers:
        raise ValueError(f"{len(layer_spikes)} spike tensors for {net.num_spiking_layers} spiking layers")
    steps = x.shape[-1]
    spikes, synops, neurons = [], [], []
    incoming, spiking = x, iter(layer_spikes)
    for spec, block in zip(net.specs, net.blocks):
        if not spec.spiking:
            continue
        # Events that reach this layer in its window: a non-zero entry is one spike.
        events = incoming.reshape(incoming.shape[0], *spec.in_shape, -1)
        counts = count_events(events) if not events.requires_grad else events.sum(dim=-1)
        fan = block_fanout(spec, block)
        synops.append((counts * fan).reshape(events.shape[0], -1).sum(dim=1))
        out = next(spiking)
        spikes.append(out.reshape(out.shape[0], -1).sum(dim=1))
        neurons.append(int(torch.tensor(spec.out_shape).prod()))
        incoming = out
    return InferenceCost(torch.stack(spikes, dim=1), torch.stack(synops, dim=1), neurons, steps)
