"""Calibration and holdout: fit on one period, compare the forecast with the next.

The checks of Fader, Hardie & Lee 2005: the conditional expectation by calibration frequency,
the aggregate tracking forecast and the customer-level correlation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from personas.features.btyd.models.bgnbd import BetaGeoModel
from personas.features.btyd.models.gamma_gamma import GammaGammaModel
from personas.features.btyd.summary import rfm_summary


def holdout_report(
    tx: pd.DataFrame,
    calibration_end: Any,
    observation_end: Any,
    time_unit: str = "W",
    customer_col: str = "customer_id",
    ts_col: str = "ts",
    amount_col: str | None = "amount",
    penalizer: float = 0.0,
    max_frequency: int = 7,
) -> dict[str, Any]:
    """Fit on the calibration period and compare predictions with the holdout period.

    The per-frequency table is FHL 2005's conditional-expectation figure: customers grouped by
    calibration repeat purchases (0, 1, ..., ``max_frequency``+) with mean actual and predicted
    holdout purchases. Errors that hide in the cohort total show up here by group.

    Returns
    -------
    dict
        JSON-serialisable: ``params`` (and ``gamma_gamma`` when amounts are given),
        ``n_customers``, ``log_likelihood``, ``holdout_duration``, ``actual_total`` and
        ``predicted_total`` (sum of conditional expectations), ``relative_error_total``,
        ``predicted_total_unconditional`` plus ``cumulative_actual`` / ``cumulative_predicted``
        (FHL's aggregate tracking forecast of all repeat purchases by ``observation_end``),
        ``correlation`` (customer level, predicted vs actual), ``mae_per_customer``,
        ``mae_by_frequency`` (mean over the table's rows) and
        ``by_frequency`` (list of records).
    """
    rfm = rfm_summary(
        tx, calibration_end, observation_end, time_unit, customer_col, ts_col, amount_col
    )
    triplet = (rfm["frequency"], rfm["recency"], rfm["T"])
    model = BetaGeoModel(penalizer).fit(*triplet)
    duration = float(rfm["duration_holdout"].iloc[0])
    predicted = model.conditional_expected_purchases(duration, *triplet)
    actual = rfm["frequency_holdout"].to_numpy(dtype=float)
    label = np.minimum(rfm["frequency"].to_numpy(), max_frequency)
    table = (
        pd.DataFrame({"freq": label, "actual": actual, "predicted": predicted})
        .groupby("freq")
        .agg(
            n_customers=("actual", "size"),
            actual=("actual", "mean"),
            predicted=("predicted", "mean"),
        )
        .reset_index()
    )
    rows = [
        {
            "frequency": f"{int(f)}+" if f == max_frequency else str(int(f)),
            "n_customers": int(n),
            "actual_mean": float(act),
            "predicted_mean": float(pred),
        }
        for f, n, act, pred in table.itertuples(index=False)
    ]
    # FHL's Figure 2: the aggregate forecast from the parameters alone, ignoring each
    # customer's history; cumulative repeat purchases from acquisition to observation_end.
    t_cal = rfm["T"].to_numpy()
    cum_start, cum_end = model.expected_purchases(t_cal), model.expected_purchases(t_cal + duration)
    report: dict[str, Any] = {
        "params": model.params_,
        "log_likelihood": model.log_likelihood_,
        "n_customers": model.n_customers_,
        "time_unit": time_unit,
        "holdout_duration": duration,
        "actual_total": float(actual.sum()),
        "predicted_total": float(predicted.sum()),
        "relative_error_total": float(predicted.sum() / actual.sum() - 1.0)
        if actual.sum() > 0
        else None,
        "predicted_total_unconditional": float(np.sum(cum_end - cum_start)),
        "cumulative_actual": float(rfm["frequency"].sum() + actual.sum()),
        "cumulative_predicted": float(np.sum(cum_end)),
        "correlation": float(np.corrcoef(predicted, actual)[0, 1]),
        "mae_per_customer": float(np.mean(np.abs(predicted - actual))),
        "mae_by_frequency": float(np.mean(np.abs(table["predicted"] - table["actual"]))),
        "by_frequency": rows,
    }
    if amount_col:
        gg = GammaGammaModel(penalizer).fit(rfm["frequency"], rfm["monetary_value"])
        report["gamma_gamma"] = gg.params_
    return report
