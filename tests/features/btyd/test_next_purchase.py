"""Expected days to the next purchase: the posterior mean wait E[1/λ] of an active customer.

Checked three ways: against a numerical integral over the Gamma posterior on CDNOW (real
data), against the planted rates and the actual next purchase of simulated BG/NBD customers,
and through the feature path (clock conversion, one-purchase customers blank).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from personas.features.btyd import BetaGeoModel, NBDModel
from personas.features.btyd.clock import Clock
from personas.features.clv import days_to_next_purchase


@pytest.fixture(scope="module")
def cdnow_bgnbd(cdnow_rfm: pd.DataFrame) -> BetaGeoModel:
    return BetaGeoModel().fit(cdnow_rfm["frequency"], cdnow_rfm["recency"], cdnow_rfm["T"])


def test_cdnow_wait_equals_the_integral_over_the_posterior_rate(cdnow_bgnbd, cdnow_rfm) -> None:
    rfm = cdnow_rfm
    wait = cdnow_bgnbd.expected_wait_if_alive(rfm["frequency"], rfm["T"])
    r, alpha = cdnow_bgnbd.params_["r"], cdnow_bgnbd.params_["alpha"]
    # r = 0.24 on CDNOW: without a repeat purchase r + x - 1 < 0 and the mean is infinite
    assert np.isnan(wait[rfm["frequency"].to_numpy() == 0]).all()
    rng = np.random.default_rng(0)
    repeat = np.flatnonzero(rfm["frequency"].to_numpy() >= 1)
    for i in rng.choice(repeat, 25, replace=False):
        x, T = rfm["frequency"].iloc[i], rfm["T"].iloc[i]
        posterior = stats.gamma(a=r + x, scale=1.0 / (alpha + T))
        want, _ = integrate.quad(lambda lam, p=posterior: p.pdf(lam) / lam, 0, np.inf, limit=200)
        assert wait[i] == pytest.approx(want, rel=1e-5)


def test_cdnow_shorter_waits_buy_more_in_the_holdout(cdnow_bgnbd, cdnow_rfm) -> None:
    """Real data: among active-looking repeat buyers, the predicted wait orders the holdout
    purchases (the 39-week holdout of Fader, Hardie & Lee 2005)."""
    rfm = cdnow_rfm[cdnow_rfm["frequency"] >= 1]
    alive = cdnow_bgnbd.probability_alive(rfm["frequency"], rfm["recency"], rfm["T"]) > 0.5
    wait = cdnow_bgnbd.expected_wait_if_alive(rfm["frequency"], rfm["T"])[alive]
    held = rfm["frequency_holdout"].to_numpy()[alive]
    rho = stats.spearmanr(wait, held).statistic
    assert rho < -0.3, rho
    # customers expecting a purchase within the holdout mostly made one
    soon = wait < 39 / 2
    assert (held[soon] > 0).mean() > 0.6 > (held[wait > 2 * 39] > 0).mean()


def _simulate(n: int, seed: int) -> pd.DataFrame:
    """BG/NBD customers written out purchase by purchase over 52 weeks, with their planted
    rate, whether they are still active at the end and when they actually buy next."""
    rng = np.random.default_rng(seed)
    r, alpha, a, b = 2.5, 6.0, 1.0, 4.0
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    T = 52.0
    x = np.zeros(n, int)
    last = np.zeros(n)
    alive = np.ones(n, bool)
    t = np.zeros(n)
    going = np.ones(n, bool)
    while going.any():
        t[going] += rng.exponential(1.0 / lam[going])
        going &= t <= T
        x[going] += 1
        last[going] = t[going]
        dies = going & (rng.random(n) < p)
        alive[dies] = False
        going &= ~dies
    # memoryless: the wait from T to the next purchase of an active customer is Exp(λ)
    nxt = rng.exponential(1.0 / lam)
    return pd.DataFrame(
        {"frequency": x, "recency": last, "T": T, "lam": lam, "alive": alive, "next": nxt}
    )


def test_planted_rates_and_next_purchases_agree_with_the_expected_wait() -> None:
    sim = _simulate(30_000, seed=1)
    model = BetaGeoModel().fit(sim["frequency"], sim["recency"], sim["T"])
    wait = model.expected_wait_if_alive(sim["frequency"], sim["T"])
    active = (sim["alive"] & (sim["frequency"] >= 1)).to_numpy()
    # posterior means average to the planted truth over the customers they condition on
    assert wait[active].mean() == pytest.approx((1 / sim["lam"][active]).mean(), rel=0.05)
    assert wait[active].mean() == pytest.approx(sim["next"][active].mean(), rel=0.05)
    # and per customer they track the planted rate
    assert stats.spearmanr(wait[active], 1 / sim["lam"][active]).statistic > 0.6
    # the formula is the family's; a model without drop-out (NBD) fitted to the same data
    # reads every silence as a slow rate, so it expects longer waits of active customers
    nbd = NBDModel().fit(sim["frequency"], sim["recency"], sim["T"])
    assert nbd.expected_wait_if_alive(sim["frequency"], sim["T"])[active].mean() > 1.1 * (
        wait[active].mean()
    )


def test_feature_is_in_calendar_days_and_blank_without_repeat_history() -> None:
    model = NBDModel()
    model.params_ = {"r": 2.0, "alpha": 10.0}
    f = np.array([0.0, 1.0, 3.0])
    T = np.array([20.0, 20.0, 20.0])
    calendar = Clock("calendar", 0, 100, np.arange(101), np.arange(7))
    got = days_to_next_purchase(model, f, T, calendar)
    assert np.isnan(got[0])
    np.testing.assert_allclose(got[1:], [30 / 2, 30 / 4])
    # six opening weekdays: a clock day is 7/6 calendar days
    trading = Clock("trading", 0, 100, np.arange(101), np.array([0, 1, 2, 3, 4, 5]))
    np.testing.assert_allclose(days_to_next_purchase(model, f, T, trading)[1:], [17.5, 8.75])
    model.params_ = {"r": 0.2, "alpha": 10.0}
    assert np.isnan(model.expected_wait_if_alive([0.5], [20.0])).all()
