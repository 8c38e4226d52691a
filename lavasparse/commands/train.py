"""lavasparse train: one SNN into a (resumable) run folder."""
from __future__ import annotations

import json
from pathlib import Path

from lavasparse.pipeline import RunSettings
from lavasparse.train.trainer import train

from ._training import download_if_asked, run_settings


def run(a) -> int:
    if a.sigma0 and len(a.sigma0) > 1:
        raise ValueError("train takes one --sigma0")
    cfg = RunSettings(**run_settings(a)).train_config(a.name or Path(a.out).name, a.schedule or "baseline",
                                                       a.sigma0[0] if a.sigma0 else 0.0, cost=a.cost,
                                                       prune_density=a.prune_density)
    download_if_asked(a)
    best = train(cfg, a.out)
    print(json.dumps(best, indent=2))
    return 0
