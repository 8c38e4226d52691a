"""Energy per operation on the target, kept in one swappable table.

The default, ``LOIHI``, takes Loihi's published per-operation figures from
Davies et al., "Loihi: A Neuromorphic Manycore Processor with On-Chip
Learning", IEEE Micro 38(1), 2018, Table 1:
  - synaptic spike operation (minimum): 23.6 pJ
  - within-tile spike energy (routing one spike): 1.7 pJ
  - neuron update, inactive / active: 52 pJ / 81 pJ; we charge every neuron
    the inactive figure each step (a lower bound: a Loihi core updates every
    neuron every step) and the difference, 29 pJ, once per spike.
These are Loihi 1 numbers, which Intel has not replaced with per-operation
figures for Loihi 2; treat results as estimates of dynamic energy, without
static power. Load another table with ``EnergyTable.from_json``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class EnergyTable:
    """Joules per operation."""

    name: str
    synop_j: float          # one synaptic operation (a spike reaching one synapse)
    spike_j: float          # routing one spike, plus the active-minus-inactive update
    neuron_update_j: float  # one neuron updated for one time step
    source: str

    def energy_j(self, synops: float, spikes: float, neuron_updates: float) -> float:
        return synops * self.synop_j + spikes * self.spike_j + neuron_updates * self.neuron_update_j

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, path: str | Path) -> "EnergyTable":
        d = json.loads(Path(path).read_text())
        missing = {"name", "synop_j", "spike_j", "neuron_update_j", "source"} - set(d)
        if missing:
            raise ValueError(f"{path}: energy table lacks {sorted(missing)}")
        return cls(**{k: d[k] for k in ("name", "synop_j", "spike_j", "neuron_update_j", "source")})


LOIHI = EnergyTable(
    name="loihi-davies2018",
    synop_j=23.6e-12,
    spike_j=1.7e-12 + (81e-12 - 52e-12),
    neuron_update_j=52e-12,
    source="Davies et al., IEEE Micro 38(1), 2018, Table 1: 23.6 pJ per synaptic op, "
           "1.7 pJ within-tile spike, 52/81 pJ neuron update inactive/active",
)
