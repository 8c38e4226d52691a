"""What a training run's cost term charges, without torch: the per-operation
energy the profile charges (so that reading an energy profile, or building
the command line, never loads torch)."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class EnergyWeights:
    """Dynamic energy per operation, in joules, as the energy profile charges
    it (``simulate/energy.py``): ``spike_j`` includes the active neuron
    update's extra. ``profile`` names where the figures come from."""

    synop_j: float
    spike_j: float
    neuron_update_j: float
    profile: str = ""

    def to_dict(self) -> dict:
        return asdict(self)
