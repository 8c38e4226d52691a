"""Where a result came from: the commit of the code that ran, whether the
working tree had uncommitted changes, the machine and the library versions.
Training diverges between CPUs (float summation order), so a committed
table names all of them (the sweep's and study's tables.json, the
pipeline's report.json, the seeds benchmark's seeds.json)."""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import torch


def provenance() -> dict:
    """{'commit', 'dirty', 'machine', 'python', 'torch'} of the code checked
    out now. Take it when a run starts: the code that runs is the code
    checked out then."""
    def git(*args):
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, check=True,
                                  cwd=Path(__file__).parent).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain") if commit else None
    # A copy of the checkout without .git (bin/lavasparse-from-source) names its commit in the environment.
    return {"commit": commit or os.environ.get("LAVASPARSE_COMMIT") or None,
            "dirty": bool(status) if commit else None,
            "machine": f"{platform.node()}: {cpu_model()}, {os.cpu_count()} CPUs"
                       + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""),
            "python": platform.python_version(), "torch": torch.__version__}


def cpu_model() -> str:
    """The CPU's model name ('AMD EPYC 7B13'): /proc/cpuinfo on Linux, where
    platform.processor() says only 'x86_64'; elsewhere what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def dirty_note(dirty: bool | None) -> str:
    """What a table adds after its commit when the tree was not clean."""
    return {True: " (uncommitted changes)", None: " (working tree not checked: no .git)"}.get(dirty, "")
