"""Loihi 2's limits, in one table, each with its source.

``public`` says whether a number is published (Intel, Lava's bit-accurate
models, peer-reviewed papers) or an assumption of ours where Intel publishes
nothing; the check reports which ones a verdict rests on. Swap the table
(``ChipSpec.from_json``) when better numbers are known.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

_BRIEF = ("Intel Labs, 'Taking Neuromorphic Computing to the Next Level with Loihi 2', "
          "technology brief, 2021")
_LAVA = "lava-nc 0.10.0, proc/lif/models.py and proc/dense/models.py (bit-accurate Loihi models)"
_DAVIES = "Davies et al., 'Loihi: a neuromorphic manycore processor with on-chip learning', IEEE Micro 38(1), 2018"


@dataclass(frozen=True)
class Limit:
    value: float
    unit: str
    source: str
    public: bool


@dataclass(frozen=True)
class ChipSpec:
    name: str
    cores_per_chip: Limit
    neurons_per_core: Limit
    synapses_per_core: Limit
    synaptic_memory_bits_per_core: Limit
    weight_bits: Limit
    state_bits: Limit
    max_delay: Limit
    message_bits: Limit
    input_axons_per_core: Limit
    output_axons_per_core: Limit
    bias_bits: Limit
    threshold_bits: Limit

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, path: str | Path) -> "ChipSpec":
        d = json.loads(Path(path).read_text())
        try:
            return cls(name=d["name"], **{k: Limit(**v) for k, v in d.items() if k != "name"})
        except TypeError as e:
            raise ValueError(f"{path}: not a chip table ({e})") from None

    def rows(self) -> list[tuple[str, Limit]]:
        return [(k, getattr(self, k)) for k in self.__dataclass_fields__ if k != "name"]


LOIHI2 = ChipSpec(
    name="loihi2",
    cores_per_chip=Limit(128, "neurocores", _BRIEF + ": 128 neuromorphic cores per chip", True),
    neurons_per_core=Limit(8192, "neurons", _BRIEF + ": up to 1M neurons per chip, i.e. 8,192 per core", True),
    synapses_per_core=Limit(937_500, "synapses", _BRIEF + ": up to 120M synapses per chip, i.e. 937,500 per "
                            "core (reached only with few-bit, compressed weights)", True),
    synaptic_memory_bits_per_core=Limit(
        128 * 1024 * 8, "bits",
        "assumption: 128 KiB of synaptic memory per core, Loihi 1's figure (" + _DAVIES + "); Intel describes "
        "Loihi 2's core memory as flexibly partitioned without a public per-core synaptic share", False),
    weight_bits=Limit(8, "bits", _LAVA + ": Dense weights are 8-bit (netx's optimize_weight_bits, clip_weights)",
                      True),
    state_bits=Limit(24, "bits", _LAVA + ": current u and voltage v are 24-bit", True),
    max_delay=Limit(62, "steps", "lava-dl 0.6.0 netx/hdf5.py clamps delays to 62 (DelayDense's buffer); "
                    "Loihi 2 has 6 delay bits", True),
    message_bits=Limit(24, "bits", _LAVA + ": graded spike payloads are 24-bit in the LIF's s_out", True),
    input_axons_per_core=Limit(32768, "axons", "assumption: Loihi 1's ratio of 4,096 input axons per 1,024 "
                               "neurons per core (" + _DAVIES + ") kept at Loihi 2's 8,192 neurons per core; "
                               "Intel publishes no Loihi 2 axon limit", False),
    output_axons_per_core=Limit(32768, "axons", "assumption: Loihi 1's ratio of 4,096 output axons per 1,024 "
                                "neurons per core (" + _DAVIES + ") kept at Loihi 2's 8,192 neurons per core; "
                                "Intel publishes no Loihi 2 axon limit", False),
    bias_bits=Limit(13, "bits (signed mantissa)", _LAVA + ": bias_mant is a signed 13-bit integer", True),
    threshold_bits=Limit(17, "bits (unsigned mantissa)", _LAVA + ": vth is an unsigned 17-bit integer", True),
)
