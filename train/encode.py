"""Rate encoding of static images into spike trains."""
from __future__ import annotations

import numpy as np
import torch


def rate_encode(images: torch.Tensor | np.ndarray, steps: int, seed: int,
                max_rate: float = 1.0) -> torch.Tensor:
    """Bernoulli rate code: pixel value p in [0, 1] spikes with probability
    ``max_rate * p`` at each of ``steps`` time steps.

    Returns a float32 tensor of 0/1 with shape (*images.shape, steps). The same
    images, steps, seed and max_rate always give the same spikes, on any device
    (the draw is made on the CPU).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0.0 < max_rate <= 1.0:
        raise ValueError(f"max_rate must lie in (0, 1], got {max_rate}")
    x = torch.as_tensor(images, dtype=torch.float32)
    device = x.device
    x = x.detach().cpu()
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError("rate_encode expects pixel values in [0, 1]")
    gen = torch.Generator().manual_seed(int(seed))
    draw = torch.rand(*x.shape, steps, generator=gen)
    return (draw < (max_rate * x)[..., None]).to(torch.float32).to(device)


def encode_images(images: torch.Tensor | np.ndarray, in_shape: tuple[int, ...], steps: int, seed: int,
                  max_rate: float = 1.0) -> torch.Tensor:
    """``rate_encode`` shaped for a network: (N, *in_shape, steps), e.g. the
    (N, 1, 8, 8) digits flattened to (N, 64, steps) for a dense input."""
    spikes = rate_encode(images, steps, seed, max_rate)
    return spikes.reshape(spikes.shape[0], *in_shape, steps)


def batch_seed(base_seed: int, epoch: int, batch_index: int) -> int:
    """Seed for one batch's encoding: fresh noise each epoch, reproducible runs."""
    return int(np.random.SeedSequence([base_seed, epoch, batch_index]).generate_state(1)[0])


def encode_batch(data, index: np.ndarray | None, in_shape: tuple[int, ...], steps: int, seed: int,
                 max_rate: float = 1.0) -> torch.Tensor:
    """Input spikes (B, *in_shape, steps) for samples ``index`` of a dataset
    (all samples when None): rate-coded images for an ImageDataset, binned
    events for an EventDataset (which ignores seed and max_rate)."""
    from .events import EventDataset

    index = np.arange(len(data)) if index is None else np.asarray(index)
    if isinstance(data, EventDataset):
        spikes = data.spikes(index, steps)
        return spikes.reshape(spikes.shape[0], *in_shape, steps)
    return encode_images(data.images[index], in_shape, steps, seed, max_rate)
