"""lavasparse sweep: Allred et al.'s five schedules and the sigma_0 search (Tables 1 and 2)."""
from __future__ import annotations

import sys

from lavasparse.sweep import SweepConfig, run_sweep
from lavasparse.train.selection import SearchPlan

from ._training import download_if_asked, run_settings


def run(a) -> int:
    plan = SearchPlan(start=a.sigma0_start, factor=a.factor, bisect_steps=a.bisect_steps, low=a.sigma0_low)
    cfg = SweepConfig(**run_settings(a, SweepConfig), plan=plan)
    download_if_asked(a)
    run_sweep(cfg, a.out, address=a.address, command="lavasparse " + " ".join(sys.argv[1:]))
    return 0
