"""The sparsity schedules of Allred et al., "Explicitly Trained Spiking Sparsity
in SNNs with Backpropagation": sigma(n) as a pure function of the epoch.

Epochs are counted n = 1 .. N. The loss is L = L_class + sigma(n) * spikeCount.
"""
from __future__ import annotations

import math
from typing import Callable

from lavasparse.defaults import SCHEDULES


def alternating_on(n: int, num_epochs: int) -> bool:
    """A(n): whether epoch n (1-based) of N includes the spike-count term.

    The share of epochs that include the term grows linearly from none in the
    first epoch to all in the last: the running number of "on" epochs after n
    epochs is c(n) = round(sum_{k=1..n} (k-1)/(N-1)) (halves rounded up), and
    A(n) = 1 exactly when c(n) > c(n-1). So epoch 1 is off, epoch N is on, and
    the local density of on-epochs near n is (n-1)/(N-1). For N = 1 the single
    epoch is on.
    """
    if not 1 <= n <= num_epochs:
        raise ValueError(f"epoch n={n} outside 1..{num_epochs}")
    if num_epochs == 1:
        return True
    return _on_count(n, num_epochs) > _on_count(n - 1, num_epochs)


def _on_count(n: int, num_epochs: int) -> int:
    # sum_{k=1..n} (k-1)/(N-1) = n(n-1) / (2(N-1)); floor(x + 0.5) rounds half up.
    return math.floor(n * (n - 1) / (2 * (num_epochs - 1)) + 0.5)


def sigma(schedule: str, sigma0: float, n: int, num_epochs: int) -> float:
    """sigma(n) for ``schedule`` (one of SCHEDULES) at epoch n of N (1-based).

    constant: s0; linear: s0*n/N; quadratic: s0*n^2/N (the paper's eq. 6 as
    written, so it exceeds s0 from n > sqrt(N)); alternating: A(n)*s0;
    alternating_linear: A(n)*s0*n/N; baseline: 0.
    """
    if not 1 <= n <= num_epochs:
        raise ValueError(f"epoch n={n} outside 1..{num_epochs}")
    fns: dict[str, Callable[[], float]] = {
        "baseline": lambda: 0.0,
        "constant": lambda: sigma0,
        "linear": lambda: sigma0 * n / num_epochs,
        "quadratic": lambda: sigma0 * n * n / num_epochs,
        "alternating": lambda: sigma0 * alternating_on(n, num_epochs),
        "alternating_linear": lambda: sigma0 * alternating_on(n, num_epochs) * n / num_epochs,
    }
    if schedule not in fns:
        raise ValueError(f"unknown schedule {schedule!r}: expected one of {SCHEDULES}")
    return float(fns[schedule]())
