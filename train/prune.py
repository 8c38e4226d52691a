"""Quantisation-aware magnitude pruning: a synapse that exports as zero costs
nothing on the chip (Loihi's sparse synapse encoding holds no zero weight), so
each synaptic layer is pruned to a density of *surviving* synapses, those that
SLAYER's 8-bit quantisation leaves non-zero, with the network fine-tuned
while the density falls.

The density follows Zhu and Gupta's gradual schedule ("To prune, or not to
prune", 2017): from 1 at the start of epoch ``start`` to the target at the
start of epoch ``end``, cubic in between, then held. Pruned weights are set to
exactly 0.0 and kept there after every optimiser step, so the mask is the
set of non-zero weights: a resumed run recovers it from its checkpoint.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lavasparse.layers.quantised import exported_weight, quantise


# The ramp, as shares of the run's epochs: pruning starts after the first
# sixth (the network has learnt something to keep) and reaches the target by
# two thirds, leaving the last third to fine-tune at the final density.
RAMP_START, RAMP_END = 1 / 6, 2 / 3


@dataclass(frozen=True)
class PruneSchedule:
    """Target density per synaptic layer (fraction of its synapses kept, in
    (0, 1]; one value for all) reached at the start of epoch ``end``, from
    epoch ``start`` on (1-based)."""

    density: tuple[float, ...]
    start: int
    end: int

    @classmethod
    def for_run(cls, density: tuple[float, ...], epochs: int) -> "PruneSchedule":
        start = max(1, math.floor(RAMP_START * epochs) + 1)
        return cls(tuple(density), start, max(start, math.floor(RAMP_END * epochs) + 1))

    def density_at(self, epoch: int) -> tuple[float, ...]:
        """Each layer's density during epoch ``epoch`` (1-based)."""
        if epoch < self.start:
            return tuple(1.0 for _ in self.density)
        done = 1.0 if self.end <= self.start else min(1.0, (epoch - self.start + 1) / (self.end - self.start + 1))
        return tuple(d + (1 - d) * (1 - done) ** 3 for d in self.density)


def synaptic_blocks(net) -> list:
    """The blocks that pruning acts on, in network order."""
    return [b for spec, b in zip(net.specs, net.blocks) if spec.prunable]


def surviving_density(block) -> float:
    """Share of the block's synapses whose weight exports non-zero."""
    return float((exported_weight(block.synapse) != 0).float().mean())


@torch.no_grad()
def prune_to_density(net, density: tuple[float, ...]) -> list[torch.Tensor]:
    """Zero all but the ``density`` share of each synaptic block's weights,
    keeping the largest (by magnitude) among those that survive quantisation;
    returns the masks (1 kept, 0 pruned), one per block. A layer already
    sparser than asked is left as it is."""
    blocks = synaptic_blocks(net)
    if len(density) == 1:
        density = tuple(density) * len(blocks)
    if len(density) != len(blocks):
        raise ValueError(f"{len(density)} densities for {len(blocks)} synaptic layers")
    masks = []
    for block, d in zip(blocks, density):
        if not 0.0 < d <= 1.0:
            raise ValueError(f"density must lie in (0, 1], got {d}")
        w = block.synapse.weight
        alive = quantise(block.synapse) != 0
        keep = round(d * w.numel())
        if int(alive.sum()) > keep:
            score = torch.where(alive, w.abs(), torch.zeros_like(w)).flatten()
            mask = torch.zeros_like(score)
            mask[torch.topk(score, keep).indices] = 1.0
            mask = mask.reshape(w.shape)
        else:
            mask = (w != 0).to(w.dtype)
        w.mul_(mask)
        masks.append(mask)
    return masks


@torch.no_grad()
def current_masks(net) -> list[torch.Tensor]:
    """The masks of a pruned network: its non-zero weights (after a resume)."""
    return [(b.synapse.weight != 0).to(b.synapse.weight.dtype) for b in synaptic_blocks(net)]


@torch.no_grad()
def apply_masks(net, masks: list[torch.Tensor]) -> None:
    """Keep pruned weights at zero (after an optimiser step moved them)."""
    for block, mask in zip(synaptic_blocks(net), masks):
        block.synapse.weight.mul_(mask)
