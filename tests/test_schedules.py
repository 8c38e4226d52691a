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


def test_choose_sigma0_iso_accuracy_and_one_point():
    from lavasparse.train.selection import Trial, choose_sigma0

    trials = [Trial(1e-4, 0.960, 30), Trial(3e-4, 0.955, 20), Trial(1e-3, 0.951, 10), Trial(3e-3, 0.90, 5)]
    assert choose_sigma0(trials, 0.955).sigma0 == 3e-4            # Table 1: no accuracy lost
    assert choose_sigma0(trials, 0.955, tolerance=0.01).sigma0 == 1e-3  # Table 2: under 1 point lost
    assert choose_sigma0(trials, 0.97) is None
    # "under 1 point" excludes a loss of exactly one point
    assert choose_sigma0([Trial(1.0, 0.94, 1)], 0.95, tolerance=0.01) is None
    assert choose_sigma0([Trial(1.0, 0.53, 1)], 0.54, tolerance=0.01) is None  # 0.54 - 0.01 rounds below 0.53
    assert choose_sigma0([Trial(1.0, 0.1 + 0.2, 1)], 0.3).sigma0 == 1.0
