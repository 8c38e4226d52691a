"""lavasparse pipeline: baseline and sparse networks, trained, exported, run on the target and compared."""
from __future__ import annotations

from lavasparse.pipeline import PipelineConfig, run_pipeline

from ._training import download_if_asked, run_settings


def run(a) -> int:
    cfg = PipelineConfig(**run_settings(a, PipelineConfig))
    download_if_asked(a)
    run_pipeline(cfg, a.out)
    return 0
