"""Gamma-Gamma: recovery on simulated spend, shrinkage, exclusions and CDNOW."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from personas.features.btyd import GammaGammaModel, simulate_bgnbd, simulate_gamma_gamma
from tests.features.btyd.data import FH_GAMMA_GAMMA, FH_GAMMA_GAMMA_LL, TRUE_BGNBD


def test_gamma_gamma_recovers_simulated_parameters() -> None:
    sim = simulate_bgnbd(100_000, **TRUE_BGNBD, T=39.0, seed=8)
    truth = {"p": 6.0, "q": 4.0, "v": 15.0}
    spend = simulate_gamma_gamma(sim["frequency"], **truth, seed=9)
    gg = GammaGammaModel().fit(sim["frequency"], spend)
    assert gg.n_customers_ == int((sim["frequency"] > 0).sum())
    for name, tol in {"p": 0.08, "q": 0.08, "v": 0.12}.items():
        assert gg.params_[name] == pytest.approx(truth[name], rel=tol), name


def test_gamma_gamma_expected_value_shrinks_to_population_mean() -> None:
    gg = GammaGammaModel()
    gg.params_ = dict(FH_GAMMA_GAMMA)
    p, q, v = FH_GAMMA_GAMMA.values()
    population = p * v / (q - 1)
    assert gg.population_mean_value() == pytest.approx(population)
    values = gg.conditional_expected_average_value([0, 1, 10, 1000], [0.0, 100.0, 100.0, 100.0])
    assert values[0] == pytest.approx(population)
    assert population < values[1] < values[2] < values[3] < 100.0
    assert values[3] == pytest.approx(100.0, rel=0.01)


def test_gamma_gamma_skips_non_positive_spend() -> None:
    freq = np.array([0, 1, 2, 3, 4, 2])
    spend = np.array([0.0, 10.0, 12.0, 0.0, 9.0, 15.0])
    gg = GammaGammaModel().fit(freq, spend)
    assert gg.n_customers_ == 4
    assert gg.n_excluded_ == 1


@pytest.mark.realdata
def test_cdnow_gamma_gamma_reproduces_published_estimates(cdnow_rfm: pd.DataFrame) -> None:
    gg = GammaGammaModel().fit(cdnow_rfm["frequency"], cdnow_rfm["monetary_value"])
    print(
        "\nCDNOW Gamma-Gamma",
        {k: round(v, 4) for k, v in gg.params_.items()},
        round(gg.log_likelihood_, 2),
    )
    assert gg.n_customers_ == 946
    for name, published in FH_GAMMA_GAMMA.items():
        assert gg.params_[name] == pytest.approx(published, rel=0.02), name
    assert gg.log_likelihood_ == pytest.approx(FH_GAMMA_GAMMA_LL, abs=0.5)
