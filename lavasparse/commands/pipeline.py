"""lavasparse pipeline: baseline and sparse networks, trained, exported, run on the target and compared."""
from __future__ import annotations

from lavasparse.pipeline import PipelineConfig, run_pipeline

from ._training import download_if_asked, run_settings


def run(a) -> int:
    d = PipelineConfig()
    cfg = PipelineConfig(**run_settings(a), val_tolerance=a.val_tolerance, schedule=a.schedule or d.schedule,
                         sigma0=tuple(a.sigma0) if a.sigma0 is not None else d.sigma0,
                         energy_sigma0=tuple(a.energy_sigma0) if a.energy_sigma0 is not None else d.energy_sigma0,
                         energy_encoding=a.energy_encoding or d.energy_encoding,
                         energy_init=a.energy_init or d.energy_init, prune_density=a.prune_density,
                         code_baseline=a.code_baseline, distill=a.distill if a.distill is not None else d.distill)
    download_if_asked(a)
    run_pipeline(cfg, a.out)
    return 0
