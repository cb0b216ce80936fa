"""Interval methods checked against their definitions and a published worked example."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from personas.campaigns.stats import Z95, bootstrap_mean_diff, newcombe, wilson


@pytest.mark.parametrize(("x", "n"), [(81, 263), (3, 40), (0, 25), (25, 25), (1500, 21306)])
def test_wilson_limits_are_where_the_score_test_reaches_z(x: int, n: int) -> None:
    """Wilson's interval is the set of p the score test does not reject: solve for it directly."""
    p_hat = x / n

    def score(p: float) -> float:
        return abs(p_hat - p) / math.sqrt(p * (1 - p) / n) - Z95

    lo, hi = wilson(x, n)
    want_lo = 0.0 if x == 0 else brentq(score, 1e-12, min(p_hat, 1 - 1e-12))
    want_hi = 1.0 if x == n else brentq(score, max(p_hat, 1e-12), 1 - 1e-12)
    assert lo == pytest.approx(want_lo, abs=1e-9)
    assert hi == pytest.approx(want_hi, abs=1e-9)


def test_newcombe_reproduces_the_papers_worked_example() -> None:
    """Newcombe (1998), Stat Med 17:873, Table II example (a): 56/70 - 48/80, method 10."""
    d, lo, hi = newcombe(56, 70, 48, 80)
    assert d == pytest.approx(0.2)
    assert lo == pytest.approx(0.0524, abs=5e-5)
    assert hi == pytest.approx(0.3339, abs=5e-5)


def test_newcombe_with_a_zero_cell_stays_inside_the_possible_range() -> None:
    """Example (h) of the paper: 0/10 - 0/20 gives -0.1611 to 0.2775."""
    d, lo, hi = newcombe(0, 10, 0, 20)
    assert d == 0
    assert lo == pytest.approx(-0.1611, abs=5e-5)
    assert hi == pytest.approx(0.2775, abs=5e-5)
    assert all(math.isnan(v) for v in newcombe(1, 0, 1, 5))


def test_zero_inflated_bootstrap_matches_resampling_everything() -> None:
    """Drawing only the non-zero values is the same bootstrap as resampling all values."""
    rng = np.random.default_rng(3)
    y1 = np.where(rng.random(3000) < 0.02, rng.gamma(2.0, 60.0, 3000), 0.0)
    y0 = np.where(rng.random(2000) < 0.01, rng.gamma(2.0, 60.0, 2000), 0.0)
    d, lo, hi = bootstrap_mean_diff(y1, y0, n_boot=4000, seed=1)
    assert d == pytest.approx(y1.mean() - y0.mean())
    naive = np.array(
        [rng.choice(y1, y1.size).mean() - rng.choice(y0, y0.size).mean() for _ in range(4000)]
    )
    se = naive.std()
    assert lo == pytest.approx(np.quantile(naive, 0.025), abs=0.1 * se)
    assert hi == pytest.approx(np.quantile(naive, 0.975), abs=0.1 * se)
    assert lo < d < hi


def test_large_arms_use_the_normal_limit_of_each_resamples_sum() -> None:
    """Beyond 10,000 spenders the resampled sums come from their normal limit: the interval
    is the exact bootstrap's within its own Monte-Carlo error, on heavy-tailed spend."""
    rng = np.random.default_rng(5)
    n = 150_000
    y1 = np.where(rng.random(n) < 0.1, rng.lognormal(3.0, 1.5, n), 0.0)  # ~15,000 spenders
    y0 = np.where(rng.random(n) < 0.09, rng.lognormal(3.0, 1.5, n), 0.0)
    fast = [bootstrap_mean_diff(y1, y0, seed=s) for s in range(3)]
    exact = [bootstrap_mean_diff(y1, y0, seed=s, normal_above=10**9) for s in range(3)]
    assert fast[0][0] == exact[0][0] == pytest.approx(y1.mean() - y0.mean())
    lo_f, hi_f = np.mean([f[1:] for f in fast], axis=0)
    lo_e, hi_e = np.mean([e[1:] for e in exact], axis=0)
    # Monte-Carlo spread of the exact interval's ends across seeds
    mc = max(np.std([e[1] for e in exact]), np.std([e[2] for e in exact]), 0.01)
    assert abs(lo_f - lo_e) < 3 * mc + 0.02 * (hi_e - lo_e)
    assert abs(hi_f - hi_e) < 3 * mc + 0.02 * (hi_e - lo_e)
    # the limit is only taken past the threshold: small arms draw exactly, seed for seed
    small = y1[:20_000], y0[:20_000]
    assert bootstrap_mean_diff(*small, seed=1) == bootstrap_mean_diff(
        *small, seed=1, normal_above=10**9
    )
