"""Calibration and holdout reports: consistency on a simulated log, published CDNOW figures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from personas.features.btyd import holdout_report
from tests.features.btyd.data import (
    CDNOW_CAL_END,
    CDNOW_OBS_END,
    load_cdnow,
    load_online_retail,
)


def test_holdout_report_is_json_and_consistent(synthetic_log: pd.DataFrame) -> None:
    report = holdout_report(synthetic_log, "2023-12-01", "2024-06-01")
    assert json.loads(json.dumps(report)) == report
    table = report["by_frequency"]
    assert [row["frequency"] for row in table][-1] == "7+"
    assert sum(row["n_customers"] for row in table) == report["n_customers"]
    mean_actual = sum(r["n_customers"] * r["actual_mean"] for r in table) / report["n_customers"]
    assert mean_actual * report["n_customers"] == pytest.approx(report["actual_total"])
    assert abs(report["relative_error_total"]) < 0.25  # the log follows the model's story


@pytest.mark.realdata
def test_cdnow_holdout_matches_fhl() -> None:
    report = holdout_report(load_cdnow(), CDNOW_CAL_END, CDNOW_OBS_END, time_unit="W")
    print("\nCDNOW holdout", json.dumps({k: v for k, v in report.items() if k != "by_frequency"}))
    # FHL 2005 Figure 2: by week 78 the aggregate forecast under-shoots cumulative repeat
    # purchases by about 4%.
    cumulative_error = report["cumulative_predicted"] / report["cumulative_actual"] - 1
    assert -0.05 < cumulative_error < 0.0
    # FHL 2005: correlation 0.626 between conditional expectations and holdout purchases, and
    # 0.23 predicted vs 0.24 actual (334 / 1,411) for customers without calibration repeats.
    assert report["correlation"] == pytest.approx(0.626, abs=0.005)
    zero = report["by_frequency"][0]
    assert zero["n_customers"] == 1411
    assert zero["actual_mean"] == pytest.approx(334 / 1411)
    assert zero["predicted_mean"] == pytest.approx(0.23, abs=0.005)
    # 1,882 repeat purchase days fall in weeks 40-78; the published model's conditional
    # expectations sum to about 1,653 (-12%): the BG/NBD under-predicts CDNOW's holdout.
    assert report["actual_total"] == 1882
    assert -0.15 < report["relative_error_total"] < -0.08
    predicted = [row["predicted_mean"] for row in report["by_frequency"]]
    assert np.all(np.diff(predicted) > 0)


@pytest.mark.realdata
@pytest.mark.slow
def test_online_retail_holdout() -> None:
    report = holdout_report(load_online_retail(), "2011-09-01", "2011-12-10", time_unit="W")
    print("\nOnline Retail holdout", json.dumps(report))
    assert report["n_customers"] > 3000
    # The holdout (September to early December) is a gift wholesaler's peak season, which a
    # stationary model cannot anticipate: it under-predicts (measured: -24%). The bound fails
    # if the fit or the data handling breaks (wrong cut-offs, no day aggregation, ...).
    assert -0.35 < report["relative_error_total"] < 0.0
    assert report["correlation"] > 0.7
    predicted = [row["predicted_mean"] for row in report["by_frequency"]]
    actual = [row["actual_mean"] for row in report["by_frequency"]]
    assert np.all(np.diff(predicted) > 0) and np.all(np.diff(actual) > 0)
    assert report["mae_by_frequency"] < 1.0
