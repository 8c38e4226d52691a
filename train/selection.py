"""Choosing networks on validation.

Allred et al.'s Table 1 keeps the largest sigma_0 whose validation accuracy is
no lower than the baseline's (iso-accuracy); Table 2 the largest that loses
under 1 point: the same rule with a different tolerance (``keeps_accuracy``),
searched by ``largest_passing``. The pipeline picks differently: among the
candidates that keep the accuracy, the cheapest as measured on validation
(``cheapest_passing``), never a dearer one because its sigma_0 is larger.
"""
from __future__ import annotations

from dataclasses import dataclass

from lavasparse.defaults import BISECT_STEPS, SIGMA0_FACTOR, SIGMA0_HIGH, SIGMA0_LOW, SIGMA0_START


_EPS = 1e-9


def keeps_accuracy(val_accuracy: float, baseline_accuracy: float, tolerance: float = 0.0) -> bool:
    """Whether a validation accuracy passes: at least the baseline's
    (tolerance 0, iso-accuracy), or less than ``tolerance`` below it (0.01:
    under 1 point lost, the boundary excluded)."""
    lost = baseline_accuracy - val_accuracy  # accuracies are k/n: compare with a margin for rounding
    return lost <= _EPS if tolerance == 0.0 else lost < tolerance - _EPS


def eligible_epochs(epochs: list[dict]) -> list[dict]:
    """The epochs of a trial that may represent it: those from the first one
    with the cost term on (``sigma`` > 0). Before it, a fine-tuned trial is
    its baseline (an alternating schedule can start off), so a schedule
    cannot win with an epoch where it did nothing for sparsity."""
    on = [e["epoch"] for e in epochs if e.get("sigma", 1.0) > 0]
    first_on = min(on) if on else float("inf")
    return [e for e in epochs if e["epoch"] >= first_on]


def most_accurate(candidates: list[dict], cost_key: str = "val_energy_dynamic_j") -> dict:
    """The candidate with the best validation accuracy; on ties the cheaper by ``cost_key``."""
    return max(candidates, key=lambda e: (e["val_accuracy"], -e[cost_key]))


def cheapest_passing(candidates: list[dict], baseline_accuracy: float, tolerance: float = 0.0,
                     cost_key: str = "val_hidden_spikes") -> dict | None:
    """Among ``candidates`` (dicts with val_accuracy and ``cost_key``) that
    ``keeps_accuracy``, the one with the lowest cost (ties: higher accuracy,
    then the earlier in the list). None when none passes."""
    passing = [(i, c) for i, c in enumerate(candidates)
               if keeps_accuracy(c["val_accuracy"], baseline_accuracy, tolerance)]
    if not passing:
        return None
    return min(passing, key=lambda ic: (ic[1][cost_key], -ic[1]["val_accuracy"], ic[0]))[1]


def pick_epoch(epochs: list[dict], baseline_accuracy: float, tolerance: float = 0.0,
               cost_key: str = "val_hidden_spikes") -> dict | None:
    """The epoch a trial is judged by: among its ``eligible_epochs`` that
    ``keeps_accuracy`` (each a dict with epoch, val_accuracy and ``cost_key``),
    the cheapest (ties: higher accuracy, then the earlier epoch). None when no
    epoch passes. This is how the number of epochs is chosen on validation."""
    return cheapest_passing(eligible_epochs(sorted(epochs, key=lambda e: e["epoch"])), baseline_accuracy,
                            tolerance, cost_key)


@dataclass(frozen=True)
class SearchPlan:
    """How ``largest_passing`` looks for sigma_0: from ``start``, multiply (or
    divide) by ``factor`` until the outcome flips (at most down to ``low`` and
    up to ``high``), then ``bisect_steps`` halvings of the bracket in log space."""

    start: float = SIGMA0_START
    factor: float = SIGMA0_FACTOR
    bisect_steps: int = BISECT_STEPS
    low: float = SIGMA0_LOW
    high: float = SIGMA0_HIGH


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
