"""lavasparse study: a table of networks trained from scratch under one protocol, measured on the target."""
from __future__ import annotations

import sys

from lavasparse.study import StudyConfig, load_rows, run_study

from ._training import download_if_asked, run_settings


def run(a) -> int:
    cfg = StudyConfig(**{**run_settings(a, StudyConfig), "rows": load_rows(a.rows)})   # --rows names the rows' file
    download_if_asked(a)
    run_study(cfg, a.out, command="lavasparse " + " ".join(sys.argv[1:]))
    return 0
