"""A trained run on the target: export its checkpoint to netx, run the test
spikes through SLAYER and the target, check that they agree, and profile the
target's spikes. The seam between training and the chip."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from lavasparse.deploy.lava_runner import saved_arrays
from lavasparse.export.netx_export import export_netx
from lavasparse.fileio import write_json, write_npz
from lavasparse.train.trainer import load_trained

from .energy import EnergyProfile
from .engines import run_target
from .profile import footprint_bytes, profile_run
from .target_result import Agreement, TargetEvaluation


def evaluate_on_target(run_dir: Path, test_input: np.ndarray, labels: np.ndarray, engine: str = "lava",
                       cross_check: int = 0, progress: bool = True, which: str = "best",
                       out_dir: Path | None = None, energy_profile: str | EnergyProfile | None = None,
                       input_origin: str | Path | None = None) -> TargetEvaluation:
    """Export the run's ``which`` checkpoint (see ``load_trained``), run the
    test spikes through SLAYER and the target (``engine``), check that the two
    agree, and profile the target's spikes. Files go to ``out_dir`` (default:
    the run folder): network.net, target_spikes.npz (each layer's spikes,
    and a potential readout's final potentials, ``readout_potential``),
    profile.json.
    ``energy_profile``: a name, a path or a loaded profile (default: the
    default profile). ``input_origin`` names the test input's file in errors
    about its values."""
    model, config = load_trained(run_dir, which=which)
    out_dir = Path(out_dir or run_dir)
    net_path = out_dir / "network.net"
    desc = export_netx(model, net_path)
    with torch.no_grad():
        out = model.windowed(model(torch.as_tensor(test_input, dtype=torch.float32)), config.steps)
        ref = [s.numpy().astype(np.int32) for s in model.spike_trains(out)]
        scores = model.scores(out).numpy()
        ref_pred = scores.argmax(axis=1)
        # A potential readout's final potential in the target's units: SLAYER's states are integers on its
        # s_scale (1 << 12), which is Lava's v (the weights' << 6 and the state's << 6); exact in float32.
        ref_potential = (np.rint(scores.astype(np.float64) * model.blocks[-1].neuron.s_scale).astype(np.int64)
                         if model.readout == "potential" else None)
    target = run_target(desc, test_input, engine, cross_check, progress=progress, input_origin=input_origin)
    write_npz(out_dir / "target_spikes.npz", **saved_arrays(target.layer_names, target.spikes,
                                                            target.readout_potential))
    energy = EnergyProfile.load(energy_profile) if isinstance(energy_profile, (str, Path)) else energy_profile
    # The SLAYER model's bytes, as NeuroBench counts them.
    profile = replace(profile_run(desc, test_input, target.spikes, energy),
                      footprint_bytes=footprint_bytes(model), engine=target.engine)
    write_json(out_dir / "profile.json", profile.to_dict())
    if len(ref) != len(target.spikes):
        raise RuntimeError(f"{net_path}: SLAYER gave {len(ref)} spiking layers, the target {len(target.spikes)}")
    agreement = Agreement(
        identical_spikes=all(np.array_equal(a, b) for a, b in zip(ref, target.spikes)),
        identical_readout=(None if ref_potential is None else
                           np.array_equal(ref_potential, target.readout_potential.reshape(len(ref_potential), -1))),
        prediction_match=float((ref_pred == target.predictions).mean()),
        layer_spike_ratio=[float(b.sum() / a.sum()) if a.sum() else None for a, b in zip(ref, target.spikes)],
        target_seconds=target.seconds, cross_checked_on_lava=target.cross_checked)
    return TargetEvaluation(
        name=config.name, schedule=config.schedule, sigma0=config.sigma0, checkpoint=which,
        encoding=config.encoding, cost=config.cost,
        prune_density=list(config.prune_density) if config.prune_density else None,
        network=str(net_path), engine=target.engine,
        accuracy_float=float((ref_pred == labels).mean()),
        accuracy_target=float((target.predictions == labels).mean()),
        profile=profile, agreement=agreement)


@dataclass
class KeptEvaluations:
    """``evaluate_on_target`` for many checkpoints on one test set, each kept
    in evaluation.json beside its netx file with what it depends on (the test
    input's hash, the engine, the cross-check and the energy profile), so that
    a resumed sweep or study does not run it again."""
    test_input: np.ndarray
    labels: np.ndarray
    engine: str
    cross_check: int
    energy_profile: str
    progress: bool = True
    stamp: dict = field(init=False)
    _energy: EnergyProfile = field(init=False, repr=False)
    _done: dict = field(init=False, repr=False, default_factory=dict)   # out_dir -> result, this command's

    def __post_init__(self):
        # the same digest as of tobytes(), without copying a contiguous test set
        digest = hashlib.sha256(np.ascontiguousarray(self.test_input))
        digest.update(np.ascontiguousarray(self.labels))
        self.stamp = {"test_input_sha256": digest.hexdigest(),
                      "engine": self.engine, "cross_check": self.cross_check, "energy_profile": self.energy_profile}
        self._energy = EnergyProfile.load(self.energy_profile)

    def get(self, run_dir: Path, which: str, out_dir: Path, title: str) -> TargetEvaluation:
        """Checkpoint ``which`` of ``run_dir`` on the target, its files in ``out_dir``."""
        out_dir = Path(out_dir)
        if out_dir in self._done:
            return self._done[out_dir]
        cache = out_dir / "evaluation.json"
        if cache.exists():
            kept = json.loads(cache.read_text())
            if kept.get("stamp") == self.stamp:
                self._done[out_dir] = TargetEvaluation.from_dict(kept["result"])
                return self._done[out_dir]
        if self.progress:
            print(f"== test set on the target ({self.engine}): {title}", flush=True)
        result = evaluate_on_target(run_dir, self.test_input, self.labels, self.engine, self.cross_check,
                                    progress=self.progress, which=which, out_dir=out_dir,
                                    energy_profile=self._energy)
        write_json(cache, {"stamp": self.stamp, "result": result.to_dict()})
        self._done[out_dir] = result
        return result
