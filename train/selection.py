"""Choosing sigma_0 on validation, as Allred et al. do.

Table 1 of the paper keeps the largest sigma_0 whose validation accuracy is no
lower than the baseline's (iso-accuracy); Table 2 the largest that loses under
1 point. Both are the same rule with a different tolerance.
"""
from __future__ import annotations

from dataclasses import dataclass


_EPS = 1e-9


@dataclass(frozen=True)
class Trial:
    """One trained candidate: its sigma_0, validation accuracy (fraction) and
    hidden spikes per validation sample."""

    sigma0: float
    val_accuracy: float
    val_hidden_spikes: float


def choose_sigma0(trials: list[Trial], baseline_accuracy: float, tolerance: float = 0.0) -> Trial | None:
    """The trial with the largest sigma_0 whose validation accuracy is at least
    ``baseline_accuracy - tolerance`` (tolerance 0: iso-accuracy; 0.01: under 1
    point lost, with the boundary excluded). None when no trial qualifies."""
    def ok(t: Trial) -> bool:
        lost = baseline_accuracy - t.val_accuracy  # accuracies are k/n: compare with a margin for rounding
        return lost <= _EPS if tolerance == 0.0 else lost < tolerance - _EPS
    kept = [t for t in trials if ok(t)]
    return max(kept, key=lambda t: t.sigma0) if kept else None
