"""BG/NBD against the paper's formulas, independent oracles, simulation and CDNOW."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import beta as beta_fn
from scipy.special import gamma as gamma_fn
from scipy.special import hyp2f1

from personas.features.btyd import BetaGeoModel, bgnbd_loglik, simulate_bgnbd
from tests.features.btyd.data import FHL_BGNBD, FHL_BGNBD_LL, TRUE_BGNBD, fitted


def test_bgnbd_loglik_matches_paper_formula() -> None:
    # FHL eq. 6 evaluated literally with gamma and beta functions: an independent oracle for
    # the log-space implementation.
    r, alpha, a, b = FHL_BGNBD.values()
    x = np.array([0.0, 1.0, 2.0, 7.0])
    t_x = np.array([0.0, 1.71, 30.43, 29.43])
    t_cal = np.array([38.86, 38.86, 38.86, 38.86])
    ll, _ = bgnbd_loglik(np.array([r, alpha, a, b]), x, t_x, t_cal)
    common = gamma_fn(r + x) * alpha**r / gamma_fn(r)
    alive = beta_fn(a, b + x) / beta_fn(a, b) * common / (alpha + t_cal) ** (r + x)
    dead = beta_fn(a + 1, b + x - 1) / beta_fn(a, b) * common / (alpha + t_x) ** (r + x)
    expected = np.log(alive + np.where(x > 0, dead, 0.0))
    np.testing.assert_allclose(ll, expected, rtol=1e-10)
    # Hardie's spreadsheet: customer 0001 (x=2, t_x=30.43, T=38.86) has ln L = -9.46.
    assert ll[2] == pytest.approx(-9.46, abs=0.005)


def test_conditional_expectation_matches_hardie_and_direct_formula() -> None:
    model = fitted(FHL_BGNBD)
    # FHL's Excel note: customer 0001 expects 1.226 purchases in the next 39 weeks.
    assert model.conditional_expected_purchases(39, 2, 30.43, 38.86)[0] == pytest.approx(
        1.226, abs=5e-4
    )
    r, alpha, a, b = FHL_BGNBD.values()
    x = np.array([0.0, 1, 2, 5, 20])
    t_x = np.array([0.0, 5, 30, 20, 38])
    t_cal = np.full(5, 38.86)
    for t in (1.0, 39.0, 52.0):
        z = t / (alpha + t_cal + t)
        eq10_numerator = (
            (a + b + x - 1)
            / (a - 1)
            * (
                1
                - ((alpha + t_cal) / (alpha + t_cal + t)) ** (r + x)
                * hyp2f1(r + x, b + x, a + b + x - 1, z)
            )
        )
        denominator = 1 + (x > 0) * a / (b + x - 1) * ((alpha + t_cal) / (alpha + t_x)) ** (r + x)
        np.testing.assert_allclose(
            model.conditional_expected_purchases(t, x, t_x, t_cal),
            eq10_numerator / denominator,
            rtol=1e-9,
        )


def test_large_frequencies_stay_finite() -> None:
    x = np.array([500.0, 2000.0, 10_000.0])
    t_x, t_cal = np.array([50.0, 51.0, 51.9]), np.array([52.0, 52.0, 52.0])
    params = np.array([0.5, 2.0, 0.7, 3.0])
    ll, grad = bgnbd_loglik(params, x, t_x, t_cal, grad=True)
    assert np.isfinite(ll).all() and np.isfinite(grad).all()
    model = fitted(dict(zip(("r", "alpha", "a", "b"), params, strict=True)))
    expected = model.conditional_expected_purchases(10.0, x, t_x, t_cal)
    assert np.isfinite(expected).all()
    # Monte Carlo oracle: given alive at T the posterior is λ ~ Gamma(r+x, α+T) and
    # p ~ Beta(a, b+x), and an individual expects (1 - exp(-λpt)) / p purchases (FHL eq. 5).
    r, alpha, a, b = params
    alive = model.probability_alive(x, t_x, t_cal)
    rng = np.random.default_rng(0)
    for i in range(len(x)):
        lam = rng.gamma(r + x[i], 1 / (alpha + t_cal[i]), 400_000)
        p = rng.beta(a, b + x[i], 400_000)
        oracle = np.mean(-np.expm1(-lam * p * 10.0) / p)
        assert expected[i] / alive[i] == pytest.approx(oracle, rel=0.005)


def test_probability_alive_bounds_and_monotonicity() -> None:
    model = fitted(FHL_BGNBD)
    rng = np.random.default_rng(3)
    t_cal = rng.uniform(1, 80, 2000)
    t_x = rng.uniform(0, 1, 2000) * t_cal
    x = rng.integers(0, 60, 2000).astype(float)
    t_x[x == 0] = 0.0
    p = model.probability_alive(x, t_x, t_cal)
    assert ((p >= 0) & (p <= 1)).all()
    assert (p[x == 0] == 1.0).all()
    # Longer silence since the last purchase -> less likely alive; later last purchase -> more.
    assert np.all(
        np.diff(model.probability_alive(np.full(5, 3), np.full(5, 10.0), [12.0, 20, 30, 40, 50]))
        < 0
    )
    assert np.all(
        np.diff(model.probability_alive(np.full(5, 3), [1.0, 5, 10, 20, 29], np.full(5, 30.0))) > 0
    )


def test_expected_purchases_are_monotone_in_time() -> None:
    model = fitted(FHL_BGNBD)
    t = np.array([0.0, 1, 10, 39, 78, 520])
    new = model.expected_purchases(t)
    assert new[0] == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.diff(new) > 0)
    cond = model.conditional_expected_purchases(t, np.full(6, 4), np.full(6, 30.0), np.full(6, 38))
    assert np.all(np.diff(cond) > 0)


def test_simulator_matches_unconditional_expectation() -> None:
    # The simulator and FHL eq. 9 are independent derivations: the mean simulated frequency
    # must equal E[X(T)] at the true parameters.
    t_cal = np.random.default_rng(5).uniform(10, 60, 200_000)
    sim = simulate_bgnbd(200_000, **TRUE_BGNBD, T=t_cal, seed=11)
    expected = fitted(TRUE_BGNBD).expected_purchases(t_cal).mean()
    assert sim["frequency"].mean() == pytest.approx(expected, rel=0.02)
    assert ((sim["recency"] >= 0) & (sim["recency"] <= sim["T"])).all()
    assert (sim.loc[sim["frequency"] == 0, "recency"] == 0).all()


def test_bgnbd_recovers_simulated_parameters() -> None:
    t_cal = np.random.default_rng(1).uniform(26, 52, 100_000)
    sim = simulate_bgnbd(100_000, **TRUE_BGNBD, T=t_cal, seed=2)
    model = BetaGeoModel().fit(sim["frequency"], sim["recency"], sim["T"])
    assert model.converged_
    assert model.n_customers_ == 100_000
    # Tolerances are about 4 standard errors at this sample size (measured over seeds).
    for name, tol in {"r": 0.05, "alpha": 0.05, "a": 0.15, "b": 0.2}.items():
        assert model.params_[name] == pytest.approx(TRUE_BGNBD[name], rel=tol), name
    truth_ll, _ = bgnbd_loglik(
        np.array(list(TRUE_BGNBD.values())),
        *(sim[c].to_numpy(float) for c in ("frequency", "recency", "T")),
    )
    assert model.log_likelihood_ >= truth_ll.sum()  # the MLE beats the truth in-sample


def test_compression_and_weights_are_exact() -> None:
    sim = simulate_bgnbd(3000, **TRUE_BGNBD, T=39.0, seed=4)
    sim["recency"] = np.round(sim["recency"] * 7) / 7  # day stamps, as in real logs
    triplet = (sim["frequency"], sim["recency"], sim["T"])
    packed = BetaGeoModel().fit(*triplet)
    plain = BetaGeoModel(compress=False).fit(*triplet)
    assert packed.n_unique_ < len(sim) / 3
    for name in TRUE_BGNBD:
        assert packed.params_[name] == pytest.approx(plain.params_[name], rel=1e-5)
    assert packed.log_likelihood_ == pytest.approx(plain.log_likelihood_, rel=1e-9)
    doubled = BetaGeoModel().fit(*triplet, weights=np.full(len(sim), 2.0))
    assert doubled.log_likelihood_ == pytest.approx(2 * packed.log_likelihood_, rel=1e-6)


def test_penalizer_shrinks_parameters() -> None:
    sim = simulate_bgnbd(3000, **TRUE_BGNBD, T=39.0, seed=6)
    triplet = (sim["frequency"], sim["recency"], sim["T"])
    free = BetaGeoModel().fit(*triplet)
    shrunk = BetaGeoModel(penalizer=0.1).fit(*triplet)
    assert sum(v**2 for v in shrunk.params_.values()) < sum(v**2 for v in free.params_.values())
    assert shrunk.log_likelihood_ < free.log_likelihood_


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "match"),
    [
        ([1, -1], [1, 0], [5, 5], "frequency is negative"),
        ([1, 1], [-1, 2], [5, 5], "recency is negative"),
        ([1, 1], [6, 2], [5, 5], "recency > T"),
        ([0, 1], [3, 2], [5, 5], "recency > 0 with frequency == 0"),
        ([1, np.nan], [1, 2], [5, 5], "NaN"),
        ([1, 2], [1, 2], [5], "same length"),
    ],
)
def test_bgnbd_rejects_invalid_triplets(frequency, recency, T, match) -> None:
    with pytest.raises(ValueError, match=match):
        BetaGeoModel().fit(frequency, recency, T)


@pytest.mark.realdata
def test_cdnow_bgnbd_reproduces_published_estimates(cdnow_rfm: pd.DataFrame) -> None:
    model = BetaGeoModel().fit(cdnow_rfm["frequency"], cdnow_rfm["recency"], cdnow_rfm["T"])
    print(
        "\nCDNOW BG/NBD",
        {k: round(v, 4) for k, v in model.params_.items()},
        round(model.log_likelihood_, 2),
    )
    for name, published in FHL_BGNBD.items():
        assert model.params_[name] == pytest.approx(published, rel=0.02), name
    assert model.log_likelihood_ == pytest.approx(FHL_BGNBD_LL, abs=0.5)
