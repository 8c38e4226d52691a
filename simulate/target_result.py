"""The typed result of a trained network on the target (``evaluate.py``
makes it; the report, the pipeline, the sweep and the study read it), with
its JSON form for the evaluation caches. Torch-free, so that a report can be
written without loading torch."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from .profile import Profile


@dataclass(frozen=True)
class Agreement:
    """SLAYER against the target on the same test spikes."""
    identical_spikes: bool               # every layer's spikes, every sample and step
    prediction_match: float              # share of samples with the same prediction
    layer_spike_ratio: list[float | None]   # per layer, the target's spikes over SLAYER's (None: SLAYER had none)
    target_seconds: float                # wall time of the target's run
    cross_checked_on_lava: int           # samples also run on Lava and found identical (emulator engine)
    identical_readout: bool | None = None   # a potential readout's final potentials, SLAYER's x s_scale (None: spikes)

    @property
    def identical_to_slayer(self) -> bool:
        """Every spike, and a potential readout's final potentials (which
        differ where the target's 24-bit voltage saturated and SLAYER's did not)."""
        return self.identical_spikes and self.identical_readout is not False


@dataclass(frozen=True)
class TargetEvaluation:
    """One trained network on the target: what was run (its training run's
    name, schedule, sigma_0, input code, cost, pruning and checkpoint; the
    netx file), its test accuracy in SLAYER and on the target, the target's
    ``Profile`` and its ``Agreement`` with SLAYER. ``run``: the training run
    folder's name where a report labels the network otherwise (the pipeline's
    family names)."""
    name: str
    accuracy_float: float      # SLAYER, on the test samples
    accuracy_target: float     # the deployed network on the target, on the same samples
    profile: Profile
    agreement: Agreement | None = None
    schedule: str | None = None
    sigma0: float | None = None
    checkpoint: str | None = None
    encoding: str | None = None
    cost: str | None = None
    prune_density: list[float] | None = None
    network: str | None = None
    engine: str = "lava"
    run: str | None = None

    def relabelled(self, name: str, run: str) -> "TargetEvaluation":
        return replace(self, name=name, run=run)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["profile"] = self.profile.to_dict()
        d["agreement"] = asdict(self.agreement) if self.agreement else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TargetEvaluation":
        """What ``to_dict`` wrote (the sweep's and study's evaluation.json)."""
        known = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in d.items() if k in known}, "profile": Profile.from_dict(d["profile"]),
                      "agreement": Agreement(**d["agreement"]) if d.get("agreement") else None})
