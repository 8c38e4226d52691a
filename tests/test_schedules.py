import pytest

from lavasparse.train.schedules import SCHEDULES, alternating_on, sigma


@pytest.mark.parametrize("n,N", [(1, 10), (5, 10), (10, 10), (3, 7)])
def test_formulas(n, N):
    s0 = 0.3
    assert sigma("baseline", s0, n, N) == 0.0
    assert sigma("constant", s0, n, N) == pytest.approx(s0)
    assert sigma("linear", s0, n, N) == pytest.approx(s0 * n / N)
    # The paper's eq. 6 as written: s0 * n^2 / N (not / N^2).
    assert sigma("quadratic", s0, n, N) == pytest.approx(s0 * n * n / N)
    a = alternating_on(n, N)
    assert sigma("alternating", s0, n, N) == pytest.approx(s0 * a)
    assert sigma("alternating_linear", s0, n, N) == pytest.approx(s0 * a * n / N)


@pytest.mark.parametrize("N", [2, 3, 10, 30, 101])
def test_alternating_grows_from_none_to_all(N):
    on = [alternating_on(n, N) for n in range(1, N + 1)]
    assert on[0] is False and on[-1] is True
    # The running share of on-epochs follows (n-1)/(N-1): over the whole run, about half.
    assert abs(sum(on) - N / 2) <= 1
    # Later halves hold more on-epochs than earlier halves.
    half = N // 2
    assert sum(on[half:]) >= sum(on[:half])
    # Deterministic.
    assert on == [alternating_on(n, N) for n in range(1, N + 1)]


def test_alternating_last_quarter_mostly_on():
    N = 40
    on = [alternating_on(n, N) for n in range(1, N + 1)]
    assert sum(on[:10]) <= 2 and sum(on[-10:]) >= 8


def test_single_epoch_and_errors():
    assert alternating_on(1, 1) is True
    with pytest.raises(ValueError):
        sigma("linear", 1.0, 0, 10)
    with pytest.raises(ValueError):
        sigma("cosine", 1.0, 1, 10)
    assert set(SCHEDULES) == {"baseline", "constant", "linear", "quadratic", "alternating", "alternating_linear"}


def test_cheapest_passing_never_takes_a_dearer_candidate():
    from lavasparse.train.selection import cheapest_passing

    # The case: the largest sigma_0 passed with more spikes than a smaller one.
    cands = [{"sigma0": 3e-6, "val_accuracy": 1.000, "val_energy": 97.0},
             {"sigma0": 1e-5, "val_accuracy": 0.993, "val_energy": 108.0},
             {"sigma0": 3e-5, "val_accuracy": 0.9826, "val_energy": 86.0}]
    assert cheapest_passing(cands, 0.9965, 0.01, "val_energy")["sigma0"] == 3e-6   # 3e-5 loses 1.39 points
    assert cheapest_passing(cands, 0.9865, 0.01, "val_energy")["sigma0"] == 3e-5   # now 3e-5 passes and is cheapest
    assert cheapest_passing(cands, 1.0, 0.0, "val_energy")["sigma0"] == 3e-6       # iso-accuracy
    assert cheapest_passing(cands, 1.001, 0.0, "val_energy") is None
    # ties on cost: higher accuracy, then the earlier
    tie = [{"n": 0, "val_accuracy": 0.95, "c": 1.0}, {"n": 1, "val_accuracy": 0.96, "c": 1.0},
           {"n": 2, "val_accuracy": 0.96, "c": 1.0}]
    assert cheapest_passing(tie, 0.95, 0.0, "c")["n"] == 1
    # "under 1 point" excludes a loss of exactly one point, with k/n rounding
    assert cheapest_passing([{"val_accuracy": 0.94, "c": 1}], 0.95, 0.01, "c") is None
    assert cheapest_passing([{"val_accuracy": 0.53, "c": 1}], 0.54, 0.01, "c") is None
    assert cheapest_passing([{"val_accuracy": 0.1 + 0.2, "c": 1}], 0.3, 0.0, "c") is not None
