"""Choosing a purchase model by its holdout error, and saying how far to trust it.

Every candidate is fitted on the calibration period and forecasts each customer's repeat
purchases in the holdout period. The rule (:data:`RULE`): drop degenerate fits (a parameter at
the optimizer's bound, or a flat likelihood), then take the lowest mean absolute error of the
per-customer forecasts among the candidates whose error of the total is within
:data:`TOTAL_GUARD` of the best total. The chosen model is "sound" when its total is within 10%
and deciles 2-10 of predicted purchases have predicted/actual within 0.8-1.2; "caution"
otherwise; with no usable candidate, "unreliable".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from personas.features.btyd.clock import Clock
from personas.features.btyd.diagnostics import purchase_checks
from personas.features.btyd.models.base import PurchaseModel
from personas.features.btyd.models.bgnbd import BetaGeoModel
from personas.features.btyd.models.mbgnbd import ModifiedBetaGeoModel
from personas.features.btyd.models.nbd import NBDModel
from personas.features.btyd.models.pareto_nbd import ParetoNBDModel

CANDIDATES: tuple[type[PurchaseModel], ...] = (
    BetaGeoModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    NBDModel,
)
TOTAL_GUARD = 0.05
SOUND_TOTAL = 0.10
SOUND_DECILES = (0.8, 1.2)
RULE = (
    "fit each model on the calibration period; drop fits with a parameter at the optimizer's "
    "bound or a flat likelihood; among the rest whose error of the holdout total is within "
    f"{TOTAL_GUARD:.0%} of the best, choose the lowest mean absolute error of per-customer "
    "holdout repeat purchases"
)


@dataclass
class Cohort:
    """Customers first seen before ``cal_end``, by day numbers (days since 1970-01-01).

    ``repeat_days``/``repeat_counts`` give, per calendar day up to ``obs_end``, the repeat
    purchases of these customers (for the cumulative tracking curve); ``trading_days`` the
    days with any purchase before ``cal_end`` (for the clock).
    """

    first: np.ndarray
    last: np.ndarray
    frequency: np.ndarray
    holdout: np.ndarray
    cal_end: int
    obs_end: int
    trading_days: np.ndarray
    repeat_days: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    repeat_counts: np.ndarray = field(default_factory=lambda: np.zeros(0))


def rfm_on_clock(
    first: np.ndarray, last: np.ndarray, frequency: np.ndarray, last_day: int, clock: Clock
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frequency, recency, T) in clock days, T to the end of ``last_day``."""
    t_first = clock.time(first)
    return (
        np.asarray(frequency, dtype=float),
        (clock.time(last) - t_first).astype(float),
        (clock.time(np.int64(last_day)) - t_first).astype(float),
    )


def decile_table(predicted: np.ndarray, actual: np.ndarray) -> list[dict[str, Any]]:
    """Customers in ten equal groups by predicted holdout purchases: predicted vs actual."""
    order = np.argsort(predicted, kind="stable")
    rows = []
    for i, group in enumerate(np.array_split(order, 10), start=1):
        p, a = float(predicted[group].sum()), float(actual[group].sum())
        rows.append(
            {
                "decile": i,
                "customers": len(group),
                "predicted": p,
                "actual": a,
                "ratio": p / a if a > 0 else None,
            }
        )
    return rows


def evaluate(
    model: PurchaseModel, cohort: Cohort, clock: Clock, tracking: bool = False
) -> dict[str, Any]:
    """Fit ``model`` on the calibration period and score its holdout forecast."""
    f, r, T = rfm_on_clock(cohort.first, cohort.last, cohort.frequency, cohort.cal_end - 1, clock)
    row: dict[str, Any] = {"model": model.name}
    try:
        model.fit(f, r, T)
    except (ValueError, FloatingPointError) as e:
        return row | {"degenerate": True, "checks": [], "error": str(e)}
    duration = clock.span(cohort.cal_end, cohort.obs_end - cohort.cal_end)
    predicted = model.conditional_expected_purchases(duration, f, r, T)
    actual = np.asarray(cohort.holdout, dtype=float)
    checks = purchase_checks(model, f)
    deciles = decile_table(predicted, actual)
    total_error = float(predicted.sum() / actual.sum() - 1.0) if actual.sum() > 0 else None
    row |= {
        "params": model.params_,
        "log_likelihood": model.log_likelihood_,
        "log_std_errors": model.log_std_errors_,
        "checks": checks,
        "degenerate": any(c["severity"] == "degenerate" for c in checks),
        "mae": float(np.mean(np.abs(predicted - actual))),
        "predicted_total": float(predicted.sum()),
        "actual_total": float(actual.sum()),
        "total_error": total_error,
        "deciles": deciles,
        "deciles_in_range": _deciles_ok(deciles),
    }
    if tracking:
        row["tracking"] = tracking_curve(model, cohort, clock)
    return row


def _deciles_ok(deciles: list[dict[str, Any]]) -> bool:
    low, high = SOUND_DECILES
    return all(d["ratio"] is not None and low <= d["ratio"] <= high for d in deciles[1:])


def tracking_curve(model: PurchaseModel, cohort: Cohort, clock: Clock) -> dict[str, list]:
    """Cumulative repeat purchases of the cohort, actual and predicted, week by week.

    FHL 2005's tracking plot: the prediction uses the parameters alone (each customer's
    expected purchases since his first), so it shows whether the model's story holds over
    the calibration and holdout periods, not only in total.
    """
    start = int(cohort.first.min())
    weeks = np.arange(start + 7, cohort.obs_end + 7, 7)
    weeks[-1] = min(weeks[-1], cohort.obs_end)
    firsts, n = np.unique(cohort.first, return_counts=True)
    t_first = clock.time(firsts)
    predicted = []
    for w in weeks:
        age = np.clip(clock.time(np.int64(w - 1)) - t_first, 0, None)
        predicted.append(float(n[firsts < w] @ model.expected_purchases(age[firsts < w])))
    days = np.asarray(cohort.repeat_days)
    counts = np.asarray(cohort.repeat_counts, dtype=float)
    actual = [float(counts[days < w].sum()) for w in weeks]
    return {
        "day": [int(w) for w in weeks],
        "actual": actual,
        "predicted": predicted,
        "calibration_end": int(cohort.cal_end),
    }


def compare(
    cohort: Cohort,
    clock: str = "auto",
    models: tuple[type[PurchaseModel], ...] = CANDIDATES,
    penalizer: float = 0.0,
) -> dict[str, Any]:
    """Fit every candidate on the calibration period, rank them and choose one (:data:`RULE`).

    Returns a JSON-ready dict: ``clock``, ``candidates`` (one row each: parameters, checks,
    holdout MAE, total error, decile table), ``chosen`` (a name or None), ``verdict``
    ("sound", "caution", "unreliable"), ``reasons`` and ``tracking`` of the chosen model.
    """
    cal_clock = Clock.from_days(cohort.trading_days, cohort.cal_end - 1, clock)
    rows = [evaluate(m(penalizer=penalizer), cohort, cal_clock) for m in models]
    usable = [r for r in rows if not r["degenerate"] and r.get("total_error") is not None]
    chosen = None
    if usable:
        best_total = min(abs(r["total_error"]) for r in usable)
        close = [r for r in usable if abs(r["total_error"]) <= best_total + TOTAL_GUARD]
        chosen = min(close, key=lambda r: r["mae"])
    for r in rows:
        r["chosen"] = r is chosen
    out: dict[str, Any] = {
        "rule": RULE,
        "clock": cal_clock.kind,
        "clock_description": cal_clock.describe(),
        "calibration_end": int(cohort.cal_end),
        "holdout_end": int(cohort.obs_end),
        "customers": len(cohort.first),
        "candidates": rows,
        "chosen": chosen["model"] if chosen else None,
    }
    out["verdict"], out["reasons"] = verdict(chosen, rows)
    if chosen is not None:
        model = next(m for m in models if m.name == chosen["model"])(penalizer=penalizer)
        out["tracking"] = evaluate(model, cohort, cal_clock, tracking=True)["tracking"]
    return out


def verdict(chosen: dict[str, Any] | None, rows: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """How far the chosen model can be trusted, with the reasons in words."""
    if chosen is None:
        why = "; ".join(
            f"{r['model']}: {r.get('error') or _worst(r)}" for r in rows if r["degenerate"]
        )
        return "unreliable", [f"no model fitted the calibration period soundly ({why})"]
    reasons = []
    err = chosen["total_error"]
    if abs(err) > SOUND_TOTAL:
        reasons.append(
            f"{chosen['model']} {'under' if err < 0 else 'over'}-forecast the holdout total by "
            f"{abs(err):.0%} (sound: within {SOUND_TOTAL:.0%})"
        )
    if not chosen["deciles_in_range"]:
        bad = [
            f"decile {d['decile']}: {d['ratio']:.2f}"
            if d["ratio"] is not None
            else f"decile {d['decile']}: no holdout purchases"
            for d in chosen["deciles"][1:]
            if d["ratio"] is None or not SOUND_DECILES[0] <= d["ratio"] <= SOUND_DECILES[1]
        ]
        reasons.append(
            f"predicted/actual holdout purchases outside {SOUND_DECILES[0]}-{SOUND_DECILES[1]} "
            f"for {', '.join(bad)}"
        )
    reasons += [c["message"] for c in chosen["checks"] if c["severity"] == "warning"]
    return ("caution" if reasons else "sound"), reasons


def _worst(row: dict[str, Any]) -> str:
    return next((c["message"] for c in row["checks"] if c["severity"] == "degenerate"), "failed")
