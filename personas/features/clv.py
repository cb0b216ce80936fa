"""Lifetime-value features from the lake: BG/NBD + Gamma-Gamma inputs summarised in SQL.

The models need four numbers per customer, so DuckDB reduces millions of order lines to that
summary and only the summary crosses into numpy. Definitions match
:func:`personas.btyd.rfm_summary`: purchases are positive-value customer-days, frequency
counts repeat days, time is in weeks.
"""

from __future__ import annotations

import logging
from datetime import date

import duckdb
import numpy as np
import pandas as pd

from personas import btyd

log = logging.getLogger(__name__)

MIN_REPEATERS = 20
WEEK = 7.0


def rfm_sql(as_of: date) -> str:
    """Per-customer BTYD summary (weeks) of positive-value purchase days before ``as_of``."""
    d = f"DATE '{as_of.isoformat()}'"
    t = f"TIMESTAMPTZ '{as_of.isoformat()} 00:00:00+00'"
    return f"""
    WITH days AS (
        SELECT customer_id, CAST(ts AS DATE) AS d, sum(amount) AS v
        FROM transactions WHERE ts < {t} AND amount > 0
        GROUP BY customer_id, CAST(ts AS DATE))
    SELECT customer_id,
           count(*) - 1 AS frequency,
           date_diff('day', min(d), max(d)) / {WEEK} AS recency,
           date_diff('day', min(d), {d}) / {WEEK} AS T,
           CASE WHEN count(*) > 1 THEN (sum(v) - arg_min(v, d)) / (count(*) - 1) ELSE 0 END
               AS monetary_value
    FROM days GROUP BY customer_id ORDER BY customer_id"""


def score_from_lake(con: duckdb.DuckDBPyConnection, as_of: date,
                    annual_discount_rate: float = 0.10) -> pd.DataFrame | None:
    """Scores per customer, or None when there are too few repeat buyers to fit the models."""
    rfm = con.execute(rfm_sql(as_of)).fetch_df()
    repeaters = int((rfm["frequency"] > 0).sum())
    if len(rfm) == 0 or repeaters < MIN_REPEATERS:
        log.warning("CLV features left out: %d repeat buyers before %s (need %d)", repeaters,
                    as_of, MIN_REPEATERS)
        return None
    f = rfm["frequency"].to_numpy(float)
    r = rfm["recency"].to_numpy(float)
    T = rfm["T"].to_numpy(float)
    m = rfm["monetary_value"].to_numpy(float)
    bg = btyd.BetaGeoModel(penalizer=0.001).fit(f, r, T)
    gg = btyd.GammaGammaModel(penalizer=0.001).fit(f, m)
    p_alive = bg.probability_alive(f, r, T)
    out = pd.DataFrame({
        "customer_id": rfm["customer_id"].astype(str),
        "p_alive": p_alive,
        "churn_risk": 1.0 - p_alive,
        "expected_purchases_90d": bg.conditional_expected_purchases(90 / WEEK, f, r, T),
        "expected_purchases_365d": bg.conditional_expected_purchases(365 / WEEK, f, r, T),
        "clv_12m": btyd.customer_lifetime_value(bg, gg, f, r, T, m, months=12, time_unit="W",
                                                annual_discount_rate=annual_discount_rate),
    })
    for c in out.columns[1:]:
        out[c] = np.asarray(out[c], dtype="float64")
    out.attrs["bgnbd"] = bg.params_
    out.attrs["gamma_gamma"] = gg.params_
    return out
