"""What the training verbs (train, pipeline, sweep, study) share."""
from __future__ import annotations

from dataclasses import fields

from lavasparse.pipeline import RunSettings
from lavasparse.train.download import download


def download_if_asked(a) -> None:
    """Fetch the dataset's official files into --data-dir first, when --download asks."""
    if getattr(a, "download", False):
        if not a.data_dir:
            raise ValueError("--download needs --data-dir (where to put the files)")
        download(a.dataset, a.data_dir)


def run_settings(a, cls: type = RunSettings) -> dict:
    """Fields of ``cls`` (RunSettings or a config built on it) from the parsed
    arguments: those given (not None) override the dataclass defaults, which
    are the one place defaults live."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in vars(a).items() if k in names and v is not None}
