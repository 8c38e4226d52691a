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


def keeps_accuracy(val_accuracy: float, baseline_accuracy: float, tolerance: float = 0.0) -> bool:
    """Whether a validation accuracy passes: at least the baseline's
    (tolerance 0, iso-accuracy), or less than ``tolerance`` below it (0.01:
    under 1 point lost, the boundary excluded)."""
    lost = baseline_accuracy - val_accuracy  # accuracies are k/n: compare with a margin for rounding
    return lost <= _EPS if tolerance == 0.0 else lost < tolerance - _EPS


def choose_sigma0(trials: list[Trial], baseline_accuracy: float, tolerance: float = 0.0) -> Trial | None:
    """The trial with the largest sigma_0 that ``keeps_accuracy``; None when
    no trial qualifies."""
    kept = [t for t in trials if keeps_accuracy(t.val_accuracy, baseline_accuracy, tolerance)]
    return max(kept, key=lambda t: t.sigma0) if kept else None


def pick_epoch(epochs: list[dict], baseline_accuracy: float, tolerance: float = 0.0) -> dict | None:
    """The epoch a trial is judged by: among its epochs that ``keeps_accuracy``
    (each a dict with epoch, val_accuracy, val_hidden_spikes), the one with
    the fewest hidden spikes (ties: higher accuracy, then the earlier epoch).
    None when no epoch passes. Epochs before the spike term was first on
    (``sigma`` 0) do not count. This is how the number of epochs is chosen
    on validation: a schedule that switches the spike term off in some
    epochs cannot win with an epoch where it did nothing for sparsity,
    unless that epoch also has the fewest spikes."""
    # Only epochs from the first one with the spike term on: before it, a
    # fine-tuned trial is its baseline (an alternating schedule can start off).
    on = [e["epoch"] for e in epochs if e.get("sigma", 1.0) > 0]
    first_on = min(on) if on else float("inf")
    passing = [e for e in epochs
               if e["epoch"] >= first_on and keeps_accuracy(e["val_accuracy"], baseline_accuracy, tolerance)]
    if not passing:
        return None
    return min(passing, key=lambda e: (e["val_hidden_spikes"], -e["val_accuracy"], e["epoch"]))


@dataclass(frozen=True)
class SearchPlan:
    """How ``largest_passing`` looks for sigma_0: from ``start``, multiply (or
    divide) by ``factor`` until the outcome flips (at most down to ``low`` and
    up to ``high``), then ``bisect_steps`` halvings of the bracket in log space."""

    start: float = 1e-5
    factor: float = 10.0
    bisect_steps: int = 3
    low: float = 1e-8
    high: float = 1.0


class _Need(Exception):
    def __init__(self, sigma0: float):
        self.sigma0 = sigma0


def _round(x: float) -> float:
    """Three significant digits: readable trial names, and the same value on every replay."""
    return float(f"{x:.3g}")


def largest_passing(passes: dict[float, bool], plan: SearchPlan) -> tuple[str, float | None]:
    """One step of the search for the largest sigma_0 that passes, replayed
    from the outcomes known so far (``passes``: sigma_0 -> passed). Returns
    ('need', sigma_0) when that trial's outcome is needed next, or ('done',
    sigma_0) with the answer (None when even ``low`` fails). Being a pure
    function of the known outcomes, a stopped search resumes where it was."""
    def ask(s: float) -> bool:
        s = _round(s)
        if s not in passes:
            raise _Need(s)
        return passes[s]

    try:
        s = _round(plan.start)
        if ask(s):
            lo = s
            while True:
                up = _round(lo * plan.factor)
                if up > plan.high:
                    return "done", lo
                if not ask(up):
                    hi = up
                    break
                lo = up
        else:
            hi = s
            while True:
                down = _round(hi / plan.factor)
                if down < plan.low:
                    return "done", None
                if ask(down):
                    lo = down
                    break
                hi = down
        for _ in range(plan.bisect_steps):
            mid = _round((lo * hi) ** 0.5)
            if mid in (lo, hi):
                break
            if ask(mid):
                lo = mid
            else:
                hi = mid
        return "done", lo
    except _Need as need:
        return "need", need.sigma0
