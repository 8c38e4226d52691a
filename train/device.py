"""Device choice for training, with the Hopper fix for SLAYER's CUDA JIT."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from lava.lib.dl.slayer import jitconfig


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' takes the GPU when there is one; 'cpu' and 'cuda[:i]' as given."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {name!r} asked for, but torch sees no CUDA GPU")
        prepare_cuda_jit(device)
    return device


def prepare_cuda_jit(device: torch.device, cache_dir: str | Path | None = None) -> str:
    """Point SLAYER's CUDA JIT at this GPU's own architecture.

    lava-dl 0.6.0 (archived; we never patch it) sets TORCH_CUDA_ARCH_LIST='8.0'
    for every GPU of capability 8 or more, so on Hopper (9.0) the first CUDA op
    fails with "no kernel image is available". Its jitconfig is read at the
    first JIT build, so setting it here, before the first forward pass, is
    enough. The build takes minutes once; TORCH_EXTENSIONS_DIR keeps it.
    Returns the architecture string set.
    """
    major, minor = torch.cuda.get_device_capability(device)
    arch = f"{major}.{minor}"
    jitconfig.TORCH_CUDA_ARCH_LIST = arch
    os.environ["TORCH_CUDA_ARCH_LIST"] = arch
    cache = Path(cache_dir or os.environ.get("TORCH_EXTENSIONS_DIR")
                 or Path.home() / ".cache" / "lavasparse" / "torch_extensions" / arch)
    os.environ["TORCH_EXTENSIONS_DIR"] = str(cache)
    cache.mkdir(parents=True, exist_ok=True)
    return arch
