"""The loss of Allred et al., L = L_class + sigma * spikeCount, and its
generalisation to what the target pays: L = L_class + sigma * cost, with cost
the hidden spike count (the paper), the synaptic ops or the dynamic energy of
an inference (``cost.py``). L_class is SLAYER's spike-rate loss, or with a
potential readout (``NetConfig.readout``) Adams et al.'s: cross-entropy of the
softmax over the output layer's final potentials."""
from __future__ import annotations

import torch

import lava.lib.dl.slayer as slayer

from lavasparse.defaults import COSTS, DEFAULT_COST, DEFAULT_READOUT, GENERIC_DEFAULTS, READOUTS

from .cost import InferenceCost, inference_cost, per_sample
from .energy_weights import EnergyWeights
from .model import class_scores


def output_rates(output_spikes: torch.Tensor) -> torch.Tensor:
    """Spikes per step of each output neuron, (batch, neurons), from (batch, *neurons, time)."""
    return output_spikes.reshape(output_spikes.shape[0], -1, output_spikes.shape[-1]).mean(-1)


def spike_count(hidden_spikes: list[torch.Tensor]) -> torch.Tensor:
    """Total spikes of the hidden layers, per sample (mean over the batch).

    Each tensor is (batch, *neurons, time); differentiable through SLAYER's
    surrogate gradient.
    """
    if not hidden_spikes:
        raise ValueError("spike_count needs at least one hidden layer")
    return sum(per_sample(s) for s in hidden_spikes).mean()


class SparsityLoss(torch.nn.Module):
    """L = L_class + sigma * cost, with L_class SLAYER's spike-rate loss on the
    output layer (target rates ``true_rate`` for the label, ``false_rate`` for
    the others), summed over output neurons, or with ``readout='potential'``
    the cross-entropy of the softmax over the output layer's potentials at
    the end of the window (SLAYER units), and ``cost`` one of COSTS: hidden
    spikes per sample (Allred et al.'s spikeCount, the default), synaptic ops
    per sample, or dynamic energy in nJ per sample (needs ``energy``). Both
    terms are per sample.

    With ``distill`` > 0 the class loss aims at (1 - distill) x the label's
    rates + distill x a teacher's output rates (``teacher_rates``, per sample
    and class): the same squared error, summed over output neurons (spike
    readout only: a potential readout has no rates).

    ``forward(layer_spikes, labels, sigma, net=None, x=None, teacher_rates=None)``
    returns (total, class_loss, cost term, InferenceCost or None); synops and
    energy need the network and its input spikes (their fan-out and the input
    layer's spikes).
    """

    def __init__(self, true_rate: float = GENERIC_DEFAULTS["true_rate"],
                 false_rate: float = GENERIC_DEFAULTS["false_rate"], cost: str = DEFAULT_COST,
                 energy: EnergyWeights | None = None, distill: float = 0.0, readout: str = DEFAULT_READOUT):
        super().__init__()
        self.true_rate, self.false_rate, self.distill = true_rate, false_rate, distill
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r}: expected one of {READOUTS}")
        if readout == "potential" and distill > 0:
            raise ValueError("distillation learns output spike rates: a potential readout has none")
        self.readout = readout
        if cost not in COSTS:
            raise ValueError(f"unknown cost {cost!r}: expected one of {COSTS}")
        if cost == "energy" and energy is None:
            raise ValueError("the energy cost needs the energy profile's figures (EnergyWeights)")
        self.cost, self.energy = cost, energy
        self.class_loss = slayer.loss.SpikeRate(true_rate=true_rate, false_rate=false_rate,
                                                reduction="sum")

    def forward(self, layer_spikes: list[torch.Tensor], labels: torch.Tensor, sigma: float,
                net=None, x: torch.Tensor | None = None, teacher_rates: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, InferenceCost | None]:
        l_class = self.classification_loss(layer_spikes[-1], labels, teacher_rates)
        if self.cost == "spikes" and net is None:
            count = spike_count(layer_spikes[:-1])
            return l_class + sigma * count, l_class, count, None
        if net is None or x is None:
            raise ValueError(f"the {self.cost} cost needs the network and its input spikes")
        # With the term off (sigma 0: an alternating schedule's off epochs, a
        # linear schedule's first) its gradient is zero: count without a graph.
        with torch.set_grad_enabled(torch.is_grad_enabled() and sigma != 0):
            counts = inference_cost(net, x, layer_spikes)
        term = counts.term(self.cost, self.energy)
        return l_class + sigma * term, l_class, term, counts

    def classification_loss(self, output: torch.Tensor, labels: torch.Tensor,
                            teacher_rates: torch.Tensor | None = None) -> torch.Tensor:
        """L_class per sample, from the output layer's (batch, *neurons, time)
        spikes, or voltage with a potential readout."""
        if self.distill > 0:
            if teacher_rates is None:
                raise ValueError("distill > 0 needs the teacher's output rates")
            return self.distilled_class_loss(output, labels, teacher_rates)
        if self.readout == "potential":
            return torch.nn.functional.cross_entropy(class_scores(output, self.readout), labels)
        # SpikeRate's 'sum' adds over the batch too: divide, so both terms are per sample.
        return self.class_loss(output, labels) / labels.shape[0]

    def distilled_class_loss(self, output: torch.Tensor, labels: torch.Tensor,
                             teacher_rates: torch.Tensor) -> torch.Tensor:
        """SpikeRate's squared error per sample, towards the blended target.
        Written out here because SLAYER's SpikeRate builds its target from the
        labels alone and takes no other (``tests/test_trainer.py`` checks that
        both agree where the teacher's rates are the label's)."""
        rate = output_rates(output)
        one_hot = torch.nn.functional.one_hot(labels, rate.shape[1]).to(rate.dtype)
        label_rates = self.true_rate * one_hot + self.false_rate * (1 - one_hot)
        target = (1 - self.distill) * label_rates + self.distill * teacher_rates.to(rate.dtype)
        return ((rate - target) ** 2).sum() / labels.shape[0]
