"""Energy on the target: per-operation and static figures in a swappable
profile, each figure with its source and whether it is published or an
estimate.

Profiles live in ``simulate/profiles/*.json`` ({name, description, figures:
{key: {value, unit, status, source}}}); ``--energy-profile`` takes a name
from there or a path. The model, per inference:
  dynamic = synops x synop_j + spikes x (spike_j + active_update_extra_j)
            + neuron updates x neuron_update_j
  static  = static_w_per_core x cores in use x inference time
  inference time = steps x (barrier_s + the slowest layer's per-core work,
            synops per step / cores x synop_s + neurons / cores x neuron_update_s)
Cores in use come from the Loihi 2 mapping (``deploy/resources.py``). Spikes
between tiles (3-4 pJ per hop on Loihi 1) are not modelled: we do not place
cores on the mesh.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from lavasparse.defaults import DEFAULT_PROFILE
from lavasparse.train.energy_weights import EnergyWeights

PROFILE_DIR = Path(__file__).parent / "profiles"
FIGURES = ("synop_j", "spike_j", "neuron_update_j", "active_update_extra_j", "synop_s", "neuron_update_s",
           "barrier_s", "static_w_per_core")


@dataclass(frozen=True)
class Figure:
    value: float
    unit: str
    status: str      # 'published' or 'estimate'
    source: str


@dataclass(frozen=True)
class EnergyProfile:
    name: str
    description: str
    figures: dict[str, Figure]

    def __post_init__(self):
        missing = [k for k in FIGURES if k not in self.figures]
        if missing:
            raise ValueError(f"energy profile {self.name}: missing figures {missing}")

    def value(self, key: str) -> float:
        return self.figures[key].value

    def dynamic_j(self, synops: float, spikes: float, neuron_updates: float) -> float:
        """Joules for that many synaptic ops, spikes and neuron updates."""
        return (synops * self.value("synop_j")
                + spikes * (self.value("spike_j") + self.value("active_update_extra_j"))
                + neuron_updates * self.value("neuron_update_j"))

    def step_time_s(self, layer_loads: list[tuple[float, int, int]]) -> float:
        """Seconds per time step from (synops per step, neurons, cores) of each
        layer: the cores of all layers work in parallel, the slowest sets the
        pace, then the barrier."""
        work = [s / c * self.value("synop_s") + n / c * self.value("neuron_update_s") for s, n, c in layer_loads]
        return self.value("barrier_s") + max(work, default=0.0)

    def static_j(self, cores: int, seconds: float) -> float:
        return self.value("static_w_per_core") * cores * seconds

    def cost_weights(self) -> EnergyWeights:
        """The figures training's energy cost charges (``train/cost.py``),
        as ``dynamic_j`` charges them."""
        return EnergyWeights(synop_j=self.value("synop_j"),
                             spike_j=self.value("spike_j") + self.value("active_update_extra_j"),
                             neuron_update_j=self.value("neuron_update_j"), profile=self.name)

    @property
    def estimates(self) -> list[str]:
        return [k for k in FIGURES if self.figures[k].status != "published"]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "EnergyProfile":
        """The profile ``to_dict`` wrote (as a profile or report JSON holds it)."""
        return cls(d["name"], d.get("description", ""), {k: Figure(**v) for k, v in d["figures"].items()})

    @classmethod
    def from_json(cls, path: str | Path) -> "EnergyProfile":
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (KeyError, TypeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not an energy profile ({type(e).__name__}: {e}); expected "
                             f"{{name, description, figures: {{{', '.join(FIGURES)}}}}}, each "
                             f"{{value, unit, status, source}}") from None

    @classmethod
    def load(cls, name_or_path: str | Path) -> "EnergyProfile":
        """A profile by name (``simulate/profiles/NAME.json``) or path."""
        p = Path(name_or_path)
        if p.suffix != ".json":
            p = PROFILE_DIR / f"{name_or_path}.json"
            if not p.exists():
                known = sorted(q.stem for q in PROFILE_DIR.glob("*.json"))
                raise ValueError(f"no energy profile {name_or_path!r} (known: {known}; or give a .json path)")
        return cls.from_json(p)


def default_profile() -> EnergyProfile:
    return EnergyProfile.load(DEFAULT_PROFILE)
