"""The test set as input spikes, as every engine sees it: the same seeds for
SLAYER, the emulator and Lava, and D encodings (draws) of each image where a
code is random."""
from __future__ import annotations

import numpy as np

from .data import load_dataset
from .encode import InputCode, batch_seed, encode_batch
from .model import parse_arch


def seed_for_test_set(seed: int) -> int:
    """The test set's encoding seed for a run seeded ``seed`` (validation draws with (seed, 0, 0))."""
    return batch_seed(seed, 0, 1)


def encode_test_set(dataset: str, data_dir: str | None, arch: str, steps: int, seed: int, code: InputCode,
                    limit: int | None = None, draws: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The test set (its first ``limit`` images) as input spikes (D*N,
    *in_shape, T) int8 in ``code`` (an InputCode), and the labels (D*N,): D =
    ``draws`` encodings of each image, draw-major (sample d*N + i is image i's
    draw d), draw d with seed seed_for_test_set(seed) + d, as validation draws its."""
    _, test = load_dataset(dataset, data_dir)
    if limit:
        test = test.subset(np.arange(min(limit, len(test))))
    in_shape = parse_arch(arch)[0].in_shape
    x = np.concatenate([encode_batch(test, None, in_shape, steps, seed_for_test_set(seed) + d, code).numpy().astype(np.int8)
                        for d in range(draws)])
    return x, np.tile(test.labels, draws)
