"""Customer lifetime value and scoring a transaction log end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd

from personas.features.btyd import GammaGammaModel, customer_lifetime_value, score_customers
from tests.features.btyd.data import FH_GAMMA_GAMMA, FHL_BGNBD, fitted


def test_clv_discounting_and_horizon() -> None:
    bgnbd, gg = fitted(FHL_BGNBD), GammaGammaModel()
    gg.params_ = dict(FH_GAMMA_GAMMA)
    args = ([0, 2, 7], [0.0, 30.43, 29.43], [38.86, 38.86, 38.86], [0.0, 22.35, 73.74])
    undiscounted = customer_lifetime_value(bgnbd, gg, *args, annual_discount_rate=0.0)
    horizon = 12 * 365.25 / 12 / 7
    expected = bgnbd.conditional_expected_purchases(horizon, *args[:3])
    expected = expected * gg.conditional_expected_average_value(args[0], args[3])
    np.testing.assert_allclose(undiscounted, expected, rtol=1e-9)
    discounted = customer_lifetime_value(bgnbd, gg, *args, annual_discount_rate=0.10)
    assert np.all(discounted < undiscounted)
    assert np.all(discounted > undiscounted / 1.10)  # cash arrives during the year, not at its end
    longer = customer_lifetime_value(bgnbd, gg, *args, months=24)
    assert np.all(longer > discounted)
    # The same model on a day clock (alpha scales with the unit) gives the same value.
    in_days = fitted({**FHL_BGNBD, "alpha": FHL_BGNBD["alpha"] * 7})
    days = customer_lifetime_value(
        in_days,
        gg,
        args[0],
        np.array(args[1]) * 7,
        np.array(args[2]) * 7,
        args[3],
        time_unit="D",
    )
    np.testing.assert_allclose(days, discounted, rtol=1e-9)


def test_score_customers(synthetic_log: pd.DataFrame) -> None:
    as_of = "2024-03-01"
    scores = score_customers(synthetic_log, as_of)
    expected_cols = {
        "p_alive",
        "expected_purchases_90d",
        "expected_purchases_365d",
        "clv_12m",
        "frequency",
        "recency",
        "T",
        "monetary_value",
    }
    assert expected_cols <= set(scores.columns)
    first_seen = synthetic_log.groupby("customer_id")["ts"].min()
    assert set(scores.index) == set(first_seen[first_seen < pd.Timestamp(as_of, tz="UTC")].index)
    assert np.isfinite(scores[list(expected_cols)].to_numpy()).all()
    once = scores[scores["frequency"] == 0]
    assert len(once) > 0 and (once["clv_12m"] > 0).all() and (once["p_alive"] == 1).all()
    assert (scores["expected_purchases_365d"] > scores["expected_purchases_90d"]).all()
    # As-of strictness end to end: later transactions do not change any score.
    early = synthetic_log[synthetic_log["ts"] < pd.Timestamp(as_of, tz="UTC")]
    pd.testing.assert_frame_equal(score_customers(early, as_of), scores)


def test_score_customers_ignores_returns(synthetic_log: pd.DataFrame) -> None:
    returns = synthetic_log.iloc[:50].assign(amount=lambda d: -d["amount"])
    with_returns = pd.concat([synthetic_log, returns], ignore_index=True)
    pd.testing.assert_frame_equal(
        score_customers(with_returns, "2024-03-01"), score_customers(synthetic_log, "2024-03-01")
    )
