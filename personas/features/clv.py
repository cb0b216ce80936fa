"""Lifetime-value features from the lake: BG/NBD + Gamma-Gamma inputs summarised in SQL.

The models need four numbers per customer, so DuckDB reduces millions of order lines to that
summary and only the summary crosses into numpy. Definitions match
:func:`personas.features.btyd.rfm_summary`: purchases are positive-value customer-days, frequency
counts repeat days, time is in weeks.
"""

from __future__ import annotations

import logging
import warnings
from datetime import date

import duckdb
import numpy as np
import pyarrow as pa

from personas.features import btyd
from personas.features.sql import Context, day_number, days_sql

log = logging.getLogger(__name__)

MIN_REPEATERS = 20
WEEK = 7.0


def rfm_sql(as_of: date, days: str | None = None) -> str:
    """Per-customer BTYD summary (weeks) of positive-value purchase days before ``as_of``.

    T runs to the last day before ``as_of`` (the last day of the calibration period), as in
    Fader, Hardie & Lee's CDNOW analysis and :func:`personas.features.btyd.rfm_summary`.
    ``days`` names a relation of purchase days already computed
    (:data:`personas.features.sql.DAYS`); without it they are computed here.
    """
    last = day_number(as_of) - 1  # the last day before as_of
    source = days or f"({days_sql(Context(as_of=as_of, tables={'transactions'}))}) days"
    return f"""
    SELECT customer_id,
           count(*) - 1 AS frequency,
           (max(d) - min(d)) / {WEEK} AS recency,
           ({last} - min(d)) / {WEEK} AS T,
           CASE WHEN count(*) > 1 THEN (sum(v) - arg_min(v, d)) / (count(*) - 1) ELSE 0 END
               AS monetary_value
    FROM {source} GROUP BY customer_id ORDER BY customer_id"""


def summary_from_lake(
    con: duckdb.DuckDBPyConnection, as_of: date, days: str | None = None
) -> pa.Table:
    """The BTYD summary (:func:`rfm_sql`) as Arrow: customer ids never become Python objects."""
    return con.sql(rfm_sql(as_of, days)).to_arrow_table()


def score_summary(
    rfm: pa.Table, as_of: date, annual_discount_rate: float = 0.10
) -> pa.Table | None:
    """Fit BG/NBD and Gamma-Gamma on a BTYD summary and score every customer in it.

    Pure numpy (no database), so it can run beside the SQL feature steps. The scores come back
    as Arrow with the summary's own customer ids (through pandas those alone cost a second at
    a million customers). None when there are too few repeat buyers to fit.
    """
    f, r, T, m = (
        rfm[c].to_numpy().astype(float) for c in ("frequency", "recency", "T", "monetary_value")
    )
    repeaters = int((f > 0).sum())
    if rfm.num_rows == 0 or repeaters < MIN_REPEATERS:
        log.warning(
            "CLV features left out: %d repeat buyers before %s (need %d)",
            repeaters,
            as_of,
            MIN_REPEATERS,
        )
        return None
    bg = btyd.BetaGeoModel(penalizer=0.001).fit(f, r, T)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # q <= 1 is handled below
        gg = btyd.GammaGammaModel(penalizer=0.001).fit(f, m)
    # Every BG/NBD quantity depends on (frequency, recency, T) only, and with day-stamped
    # purchases a million customers share far fewer distinct triplets: evaluate the
    # (hypergeometric) expressions once per triplet. CLV is linear in the spend per purchase.
    fu, ru, Tu, inv = _distinct_triplets(f, r, T)
    p_alive = bg.probability_alive(fu, ru, Tu)[inv]
    discounted = btyd.customer_lifetime_value(
        bg,
        _UnitValue(),
        fu,
        ru,
        Tu,
        np.zeros(len(fu)),
        months=12,
        time_unit="W",
        annual_discount_rate=annual_discount_rate,
    )[inv]
    clv = discounted * gg.conditional_expected_average_value(f, m)
    if gg.params_["q"] <= 1.0:
        # Heavy-tailed spend (wholesalers): the Gamma-Gamma population mean p*v/(q-1) does not
        # exist, so one-time buyers would get a negative value. Value them at the median repeat
        # spend instead; repeat buyers keep their (finite) posterior mean.
        log.warning(
            "Gamma-Gamma q=%.3f <= 1: one-time buyers valued at the median spend", gg.params_["q"]
        )
        once = f == 0
        clv[once] = float(np.median(m[f > 0])) * discounted[once]
    log.info("CLV models: BG/NBD %s, Gamma-Gamma %s", _rounded(bg.params_), _rounded(gg.params_))
    scores = {
        "p_alive": p_alive,
        "churn_risk": 1.0 - p_alive,
        "expected_purchases_90d": bg.conditional_expected_purchases(90 / WEEK, fu, ru, Tu)[inv],
        "expected_purchases_365d": bg.conditional_expected_purchases(365 / WEEK, fu, ru, Tu)[inv],
        "clv_12m": clv,
    }
    return pa.table(
        {"customer_id": rfm["customer_id"]}
        | {k: np.asarray(v, dtype="float64") for k, v in scores.items()}
    )


def _rounded(params: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in params.items()}


def _distinct_triplets(
    f: np.ndarray, r: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (f, r, T) rows and, per customer, the index of its row.

    Recency and age are whole days in weeks, so the triplet packs into one integer and
    ``np.unique`` runs on that (0.1 s for a million customers; on the rows, 3 s).
    """
    rd, Td = np.rint(r * WEEK), np.rint(T * WEEK)
    span = float(max(rd.max(initial=0), Td.max(initial=0))) + 1
    exact = np.allclose(rd, r * WEEK) and np.allclose(Td, T * WEEK) and np.all(f == np.rint(f))
    if not exact or (f.max(initial=0) + 1) * span * span >= 2**62:
        uniq, inv = np.unique(np.column_stack([f, r, T]), axis=0, return_inverse=True)
        return uniq[:, 0], uniq[:, 1], uniq[:, 2], inv.reshape(-1)
    key = (f.astype(np.int64) * int(span) + rd.astype(np.int64)) * int(span) + Td.astype(np.int64)
    _, first, inv = np.unique(key, return_index=True, return_inverse=True)
    return f[first], r[first], T[first], inv.reshape(-1)


class _UnitValue:
    """Stands in for Gamma-Gamma to get discounted expected purchases (value 1 each)."""

    def conditional_expected_average_value(
        self, frequency: np.ndarray, monetary_value: np.ndarray
    ) -> np.ndarray:
        return np.ones(len(np.asarray(frequency)), dtype=float)
