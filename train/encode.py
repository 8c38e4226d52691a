"""Encodings of static images into spike trains.

- ``rate``: Bernoulli, each pixel spikes with probability ``max_rate * p`` at
  every step (Allred et al.'s and IMSNN's input). A white pixel spikes every
  step, so the input layer sends about ``sum(p) * max_rate * T`` spikes per
  image, each costing the first layer's fan-out in synaptic ops.
- ``latency``: time-to-first-spike, one spike per pixel above
  ``LATENCY_THRESHOLD``, brighter earlier, within the first ``LATENCY_WINDOW``
  steps (see ``latency_encode``): at most one input spike per pixel per
  inference, and none for the background.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lavasparse.defaults import ENCODINGS, LATENCY_THRESHOLD, LATENCY_WINDOW

from .events import EventDataset


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


def latency_encode(images: torch.Tensor | np.ndarray, steps: int, seed: int,
                   threshold: float = LATENCY_THRESHOLD, window: int = LATENCY_WINDOW) -> torch.Tensor:
    """Time-to-first-spike code: a pixel p in (threshold, 1] spikes once, at
    step ``floor((1 - p) / (1 - threshold) * w + u)`` of the first w =
    min(window, steps) steps (a white pixel first), with u uniform in [0, 1)
    drawn with ``seed``: dithered rounding, so that the expected time is exact
    and the code is not the same in every epoch (the deterministic code let
    the digits network learn its training set by heart: 100% training, 96.5%
    validation). Pixels at or below ``threshold`` never spike. Returns float32
    0/1 of shape (*images.shape, steps)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must lie in [0, 1), got {threshold}")
    x = torch.as_tensor(images, dtype=torch.float32)
    device = x.device
    x = x.detach().cpu()
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError("latency_encode expects pixel values in [0, 1]")
    w = min(window, steps)
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(int(seed)))
    t = torch.floor((1 - x) / (1 - threshold) * w + u).clamp(0, w - 1).long()
    out = F.one_hot(t, steps).to(torch.float32) * (x > threshold).to(torch.float32)[..., None]
    return out.to(device)


@dataclass(frozen=True)
class InputCode:
    """How images become input spikes: ``kind`` one of ENCODINGS; for the
    rate code ``max_rate`` (spikes per step of a white pixel), for the latency
    code ``window`` (the first steps, in which its spikes fall)."""

    kind: str = "rate"
    max_rate: float = 1.0
    window: int = LATENCY_WINDOW

    def __post_init__(self):
        if self.kind not in ENCODINGS:
            raise ValueError(f"unknown encoding {self.kind!r}: expected one of {ENCODINGS}")
        if self.window < 1:
            raise ValueError(f"the latency window must be >= 1 step, got {self.window}")

    def encode(self, images: torch.Tensor | np.ndarray, steps: int, seed: int) -> torch.Tensor:
        """(*images.shape, steps) float32 0/1; the same seed gives the same spikes."""
        if self.kind == "rate":
            return rate_encode(images, steps, seed, self.max_rate)
        return latency_encode(images, steps, seed, window=self.window)


def encode_images(images: torch.Tensor | np.ndarray, in_shape: tuple[int, ...], steps: int, seed: int,
                  code: InputCode = InputCode()) -> torch.Tensor:
    """Images as input spikes for a network: (N, *in_shape, steps), e.g. the
    (N, 1, 8, 8) digits flattened to (N, 64, steps) for a dense input."""
    spikes = code.encode(images, steps, seed)
    return spikes.reshape(spikes.shape[0], *in_shape, steps)


def batch_seed(base_seed: int, epoch: int, batch_index: int) -> int:
    """Seed for one batch's encoding: fresh noise each epoch, reproducible runs."""
    return int(np.random.SeedSequence([base_seed, epoch, batch_index]).generate_state(1)[0])


def encode_batch(data, index: np.ndarray | None, in_shape: tuple[int, ...], steps: int, seed: int,
                 code: InputCode = InputCode()) -> torch.Tensor:
    """Input spikes (B, *in_shape, steps) for samples ``index`` of a dataset
    (all samples when None): encoded images for an ImageDataset (see
    ``encode_images``), binned events for an EventDataset (which ignores
    seed and code)."""
    index = np.arange(len(data)) if index is None else np.asarray(index)
    if isinstance(data, EventDataset):
        spikes = data.spikes(index, steps)
        return spikes.reshape(spikes.shape[0], *in_shape, steps)
    return encode_images(data.images[index], in_shape, steps, seed, code)
