"""The loss of Allred et al.: L = L_class + sigma * spikeCount."""
from __future__ import annotations

import torch

import lava.lib.dl.slayer as slayer


def spike_count(hidden_spikes: list[torch.Tensor]) -> torch.Tensor:
    """Total spikes of the hidden layers, per sample (mean over the batch).

    Each tensor is (batch, *neurons, time); differentiable through SLAYER's
    surrogate gradient.
    """
    if not hidden_spikes:
        raise ValueError("spike_count needs at least one hidden layer")
    return sum(s.reshape(s.shape[0], -1).sum(dim=1) for s in hidden_spikes).mean()


class SparsityLoss(torch.nn.Module):
    """L = L_class + sigma * spikeCount, with L_class SLAYER's spike-rate loss
    on the output layer (target rates ``true_rate`` for the label, ``false_rate``
    for the others), summed over output neurons. Both terms are per sample.
    ``forward`` returns (total, class_loss, spike_count)."""

    def __init__(self, true_rate: float = 0.2, false_rate: float = 0.03):
        super().__init__()
        self.class_loss = slayer.loss.SpikeRate(true_rate=true_rate, false_rate=false_rate,
                                                reduction="sum")

    def forward(self, layer_spikes: list[torch.Tensor], labels: torch.Tensor,
                sigma: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # SpikeRate's 'sum' adds over the batch too: divide, so both terms are per sample.
        l_class = self.class_loss(layer_spikes[-1], labels) / labels.shape[0]
        count = spike_count(layer_spikes[:-1])
        return l_class + sigma * count, l_class, count
