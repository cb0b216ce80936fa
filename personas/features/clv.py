"""Lifetime-value features from the lake: BTYD inputs in SQL, a model chosen on a holdout.

The models need four numbers per customer, so DuckDB reduces millions of order lines to that
summary and only the summary crosses into numpy. Definitions match
:func:`personas.features.btyd.rfm_summary`: purchases are positive-value customer-days, frequency
counts repeat days. Before scoring, the history is split into calibration and holdout
(:func:`cohort_from_lake`), every candidate model is fitted on the calibration period and the
one with the best holdout forecast is refitted on the whole history
(:mod:`personas.features.btyd.selection`); the choice, the diagnostics and how far the figures
can be trusted travel with the features as :attr:`ClvResult.report` (catalog.json "clv").
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from personas.features import btyd
from personas.features.btyd.clock import Clock
from personas.features.btyd.diagnostics import purchase_checks, spend_checks
from personas.features.btyd.selection import CANDIDATES, Cohort, compare, rfm_on_clock
from personas.features.sql import Context, day_number, days_sql

log = logging.getLogger(__name__)

MIN_REPEATERS = 20
NEXT_PURCHASE = "expected_days_to_next_purchase"
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
               AS monetary_value,
           min(d) AS first_day, max(d) AS last_day
    FROM {source} GROUP BY customer_id ORDER BY customer_id"""


def summary_from_lake(
    con: duckdb.DuckDBPyConnection, as_of: date, days: str | None = None
) -> pa.Table:
    """The BTYD summary (:func:`rfm_sql`) as Arrow: customer ids never become Python objects."""
    return con.sql(rfm_sql(as_of, days)).to_arrow_table()


def cohort_from_lake(
    con: duckdb.DuckDBPyConnection, as_of: date, holdout: float, days: str | None = None
) -> Cohort | None:
    """Calibration/holdout split of the history before ``as_of``: the last ``holdout`` share.

    None when ``holdout`` is 0 or the history is too short to split (under 8 weeks).
    """
    source = days or f"({days_sql(Context(as_of=as_of, tables={'transactions'}))}) days"
    end = day_number(as_of)
    start = con.execute(f"SELECT min(d) FROM {source}").fetchone()[0]
    if start is None or holdout <= 0 or end - start < 56:
        return None
    cal = end - max(1, round(holdout * (end - start)))
    per_customer = con.execute(
        f"""SELECT min(d) AS first, max(d) FILTER (WHERE d < {cal}) AS last,
                   count(*) FILTER (WHERE d < {cal}) - 1 AS frequency,
                   count(*) FILTER (WHERE d >= {cal}) AS holdout
            FROM {source} GROUP BY customer_id HAVING min(d) < {cal}"""
    ).fetchnumpy()
    repeats = con.execute(
        f"""SELECT d, count(*) AS n FROM (
                SELECT d, min(d) OVER (PARTITION BY customer_id) AS f FROM {source})
            WHERE d > f AND f < {cal} GROUP BY d ORDER BY d"""
    ).fetchnumpy()
    trading = con.execute(
        f"SELECT DISTINCT d FROM {source} WHERE d < {cal} ORDER BY d"
    ).fetchnumpy()
    return Cohort(
        first=per_customer["first"].astype(np.int64),
        last=per_customer["last"].astype(np.int64),
        frequency=per_customer["frequency"].astype(float),
        holdout=per_customer["holdout"].astype(float),
        cal_end=int(cal),
        obs_end=int(end),
        trading_days=trading["d"].astype(np.int64),
        repeat_days=repeats["d"].astype(np.int64),
        repeat_counts=repeats["n"].astype(float),
    )


@dataclass
class ClvResult:
    """Scores (None when no model deserves them) and the report of how they were obtained."""

    scores: pa.Table | None
    report: dict[str, Any] = field(default_factory=dict)


def score_summary(
    rfm: pa.Table,
    as_of: date,
    annual_discount_rate: float = 0.10,
    cohort: Cohort | None = None,
    clock: str = "auto",
    trading_days: np.ndarray | None = None,
) -> ClvResult:
    """Choose a purchase model on ``cohort``'s holdout, refit it on ``rfm`` and score everyone.

    Pure numpy (no database), so it can run beside the SQL feature steps. The scores come back
    as Arrow with the summary's own customer ids. What is left out, and why: every CLV column
    when no model is usable (too few repeat buyers, every fit degenerate); P(alive) and churn
    risk when the chosen model has no drop-out (NBD: none is visible in the history).
    """
    f = rfm["frequency"].to_numpy().astype(float)
    # spend to 1e-9 of a currency unit: engines that sum in another order (Spark) then feed the
    # Gamma-Gamma fit the same numbers, and its optimum does not move by their last bits
    m = np.round(rfm["monetary_value"].to_numpy().astype(float), 9)
    repeaters = int((f > 0).sum())
    report: dict[str, Any] = {"customers": rfm.num_rows, "repeat_buyers": repeaters}
    if rfm.num_rows == 0 or repeaters < MIN_REPEATERS:
        why = f"{repeaters} repeat buyers before {as_of} (need {MIN_REPEATERS})"
        log.warning("CLV features left out: %s", why)
        return ClvResult(None, report | {"verdict": "unreliable", "reasons": [why]})
    selection = compare(cohort, clock) if cohort is not None and cohort.holdout.sum() > 0 else None
    days = rfm["first_day"].to_numpy().astype(np.int64), rfm["last_day"].to_numpy().astype(np.int64)
    last_day = day_number(as_of) - 1
    full_clock = Clock.from_days(
        trading_days if trading_days is not None else np.concatenate(days),
        last_day,
        selection["clock"] if selection else clock,
    )
    f, r, T = rfm_on_clock(days[0], days[1], f, last_day, full_clock)
    model, report = _chosen_model(selection, f, r, T, report)
    if model is None:
        log.warning("CLV features left out: %s", "; ".join(report["reasons"]))
        return ClvResult(None, report)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # q <= 1 is handled below
        gg = btyd.GammaGammaModel(penalizer=0.001).fit(f, m)
    report["gamma_gamma"] = {"params": gg.params_, "checks": spend_checks(gg, f, m)}
    report["clock"], report["clock_description"] = full_clock.kind, full_clock.describe()
    scores = _scores(model, gg, f, r, T, m, full_clock, day_number(as_of), annual_discount_rate)
    blank = np.isnan(scores[NEXT_PURCHASE])
    report["next_purchase"] = {
        "customers": int((~blank).sum()),
        "blank": {
            "one purchase only": int((f == 0).sum()),
            "no finite mean wait (r + x <= 1)": int((blank & (f > 0)).sum()),
        },
    }
    log.info(
        "CLV models: %s %s, Gamma-Gamma %s",
        model.name,
        _rounded(model.params_),
        _rounded(gg.params_),
    )
    return ClvResult(
        pa.table(
            {"customer_id": rfm["customer_id"]}
            | {k: np.asarray(v, dtype="float64") for k, v in scores.items()}
        ),
        report,
    )


def _chosen_model(
    selection: dict[str, Any] | None,
    f: np.ndarray,
    r: np.ndarray,
    T: np.ndarray,
    report: dict[str, Any],
) -> tuple[btyd.PurchaseModel | None, dict[str, Any]]:
    """The holdout's choice refitted on the whole history; by AIC when there is no holdout."""
    if selection is not None:
        report |= {
            "selection": selection,
            "verdict": selection["verdict"],
            "reasons": list(selection["reasons"]),
        }
        if selection["chosen"] is None:
            return None, report
        cls = next(c for c in CANDIDATES if c.name == selection["chosen"])
        model = cls(penalizer=0.0).fit(f, r, T)
    else:
        fits = [c().fit(f, r, T) for c in CANDIDATES]
        sound = [m for m in fits if not _degenerate(purchase_checks(m, f))]
        report |= {
            "verdict": "caution",
            "reasons": [
                "not validated on a holdout period (the "
                "history is too short to split, or the split was switched off)"
            ],
        }
        if not sound:
            report |= {"verdict": "unreliable", "reasons": ["every model's fit is degenerate"]}
            return None, report
        model = min(sound, key=lambda m: 2 * len(m.params_) - 2 * m.log_likelihood_)
    checks = purchase_checks(model, f)
    report["model"] = {
        "name": model.name,
        "params": model.params_,
        "log_likelihood": model.log_likelihood_,
        "checks": checks,
    }
    if _degenerate(checks):
        report["verdict"] = "unreliable"
        report["reasons"].append(f"{model.name} refitted on the whole history is degenerate")
        return None, report
    report["reasons"] += [
        c["message"]
        for c in checks
        if c["severity"] == "warning" and c["message"] not in report["reasons"]
    ]
    if report["reasons"] and report["verdict"] == "sound":
        report["verdict"] = "caution"
    report["churn"] = model.name != btyd.NBDModel.name
    if not report["churn"]:
        report["notes"] = [
            "no customer drop-out is visible in this history, so the chosen "
            "model (NBD) has none: churn risk is not computed"
        ]
    return model, report


def _degenerate(checks: list[dict[str, str]]) -> bool:
    return any(c["severity"] == "degenerate" for c in checks)


def _scores(
    model: btyd.PurchaseModel,
    gg: btyd.GammaGammaModel,
    f: np.ndarray,
    r: np.ndarray,
    T: np.ndarray,
    m: np.ndarray,
    clock: Clock,
    today: int,
    annual_discount_rate: float,
) -> dict[str, np.ndarray]:
    """Per-customer scores; the purchase quantities once per distinct (f, r, T)."""
    # Every purchase-model quantity depends on (frequency, recency, T) only, and with
    # day-stamped purchases a million customers share far fewer distinct triplets: evaluate the
    # (hypergeometric) expressions once per triplet. CLV is linear in the spend per purchase.
    fu, ru, Tu, inv = _distinct_triplets(f, r, T)
    discounted = btyd.customer_lifetime_value(
        model,
        _UnitValue(),
        fu,
        ru,
        Tu,
        np.zeros(len(fu)),
        months=12,
        annual_discount_rate=annual_discount_rate,
        month_length=clock.span(today, 365.25) / 12.0,
    )[inv]
    clv = discounted * gg.conditional_expected_average_value(f, m)
    if gg.params_["q"] <= 1.0:
        # Heavy-tailed spend (wholesalers): the Gamma-Gamma population mean p*v/(q-1) does not
        # exist, so one-time buyers would get a negative value. Value them at the median repeat
        # spend instead; repeat buyers keep their (finite) posterior mean.
        once = f == 0
        clv[once] = float(np.median(m[f > 0])) * discounted[once]
    out = {}
    if model.name != btyd.NBDModel.name:
        p_alive = model.probability_alive(fu, ru, Tu)[inv]
        out |= {"p_alive": p_alive, "churn_risk": 1.0 - p_alive}
    for horizon in (90, 365):
        t = clock.span(today, horizon)
        out[f"expected_purchases_{horizon}d"] = model.conditional_expected_purchases(t, fu, ru, Tu)[
            inv
        ]
    return out | {"clv_12m": clv, NEXT_PURCHASE: days_to_next_purchase(model, f, T, clock)}


def days_to_next_purchase(
    model: btyd.PurchaseModel, f: np.ndarray, T: np.ndarray, clock: Clock
) -> np.ndarray:
    """Expected calendar days to the next purchase if still active; NaN without repeat history.

    :meth:`~personas.features.btyd.PurchaseModel.expected_wait_if_alive` in clock days,
    turned into calendar days at the clock's future pace (7 / regular opening weekdays, 1
    on the calendar). A one-purchase customer's wait would be the population's, not
    theirs, so it is left blank, as it is where the rate's posterior has no finite mean.
    """
    wait = model.expected_wait_if_alive(f, T) * 7.0 / len(clock.weekdays)
    return np.where(f > 0, wait, np.nan)


def _rounded(params: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in params.items()}


def _distinct_triplets(
    f: np.ndarray, r: np.ndarray, T: np.ndarray, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (f, r, T) rows and, per customer, the index of its row.

    Recency and age are whole (clock) days, times ``scale`` when they are given in weeks
    (``scale`` 7), so the triplet packs into one integer and
    ``np.unique`` runs on that (0.1 s for a million customers; on the rows, 3 s).
    """
    rd, Td = np.rint(r * scale), np.rint(T * scale)
    span = float(max(rd.max(initial=0), Td.max(initial=0))) + 1
    exact = np.allclose(rd, r * scale) and np.allclose(Td, T * scale) and np.all(f == np.rint(f))
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
