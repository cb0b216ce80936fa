"""rfm_summary: the models' inputs, hand-computed, strictly as of the cut-off, and on CDNOW."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from personas.features.btyd import rfm_summary
from tests.features.btyd.data import transactions


def test_rfm_summary_hand_computed(small_log: pd.DataFrame) -> None:
    rfm = rfm_summary(small_log, "2024-02-01", "2024-02-15", time_unit="D")
    assert list(rfm.index) == ["007", "7"]  # "x" was first seen after the cut-off
    first = rfm.loc["007"]
    assert first["frequency"] == 2
    assert first["recency"] == 28.0
    assert first["T"] == 30.0  # 2024-01-01 .. 2024-01-31, the last calibration day
    assert first["monetary_value"] == pytest.approx(30.0)  # (20 + 40) / 2, first excluded
    assert rfm.loc["7", "T"] == 23.0
    assert rfm.loc["7", "monetary_value"] == 0.0
    assert rfm["frequency_holdout"].tolist() == [0, 0]
    assert rfm["duration_holdout"].tolist() == [14.0, 14.0]
    assert rfm["frequency"].dtype == np.int64


def test_rfm_summary_aggregates_same_day_records(small_log: pd.DataFrame) -> None:
    doubled = pd.concat([small_log, small_log.iloc[[2]]], ignore_index=True)
    rfm = rfm_summary(doubled, "2024-02-01", time_unit="D")
    assert rfm.loc["007", "frequency"] == 2
    assert rfm.loc["007", "monetary_value"] == pytest.approx((40.0 + 40.0) / 2)


def test_rfm_summary_is_strictly_as_of(small_log: pd.DataFrame) -> None:
    cut = "2024-01-29 08:00"
    before = rfm_summary(small_log, cut, time_unit="W")
    late = transactions(
        [
            ("007", "2024-01-29 08:00", 99.0),  # exactly at the cut-off: excluded
            ("007", "2024-01-29 23:59", 99.0),
            ("7", "2024-03-01 00:00", 99.0),
            ("new", "2024-01-29 08:00", 99.0),
        ]
    )
    after = rfm_summary(pd.concat([small_log, late], ignore_index=True), cut, time_unit="W")
    pd.testing.assert_frame_equal(before, after)
    # The 2024-01-29 08:00 purchase itself is excluded, but its day is the last calibration day.
    assert before.loc["007", "frequency"] == 1
    assert before.loc["007", "T"] == pytest.approx(28 / 7)


def test_rfm_summary_naive_and_aware_timestamps_agree(small_log: pd.DataFrame) -> None:
    naive = small_log.assign(ts=small_log["ts"].dt.tz_localize(None))
    helsinki = small_log.assign(ts=small_log["ts"].dt.tz_convert("Europe/Helsinki"))
    expected = rfm_summary(small_log, "2024-02-01", "2024-02-10")
    pd.testing.assert_frame_equal(rfm_summary(naive, "2024-02-01", "2024-02-10"), expected)
    pd.testing.assert_frame_equal(
        rfm_summary(helsinki, pd.Timestamp("2024-02-01", tz="UTC"), "2024-02-10"), expected
    )


@pytest.mark.parametrize("dtype", ["string", "str", object])
def test_rfm_summary_keeps_string_ids(small_log: pd.DataFrame, dtype: object) -> None:
    tx = small_log.assign(customer_id=small_log["customer_id"].astype(dtype))
    rfm = rfm_summary(tx, "2024-02-01")
    assert sorted(rfm.index.astype(str)) == ["007", "7"]
    assert rfm.index.name == "customer_id"


def test_rfm_summary_rejects_bad_input(small_log: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="missing column"):
        rfm_summary(small_log.drop(columns="amount"), "2024-02-01")
    with pytest.raises(ValueError, match="missing value"):
        rfm_summary(small_log.assign(ts=pd.NaT), "2024-02-01")
    with pytest.raises(ValueError, match="must be after calibration_end"):
        rfm_summary(small_log, "2024-02-01", "2024-01-01")
    with pytest.raises(ValueError, match="time_unit"):
        rfm_summary(small_log, "2024-02-01", time_unit="fortnight")


@pytest.mark.realdata
def test_cdnow_summary_matches_fhl(cdnow_rfm: pd.DataFrame) -> None:
    assert len(cdnow_rfm) == 2357
    assert int((cdnow_rfm["frequency"] == 0).sum()) == 1411  # FHL 2005, Figure 4's zero class
    assert int((cdnow_rfm["frequency"] > 0).sum()) == 946  # F&H 2013 Gamma-Gamma sample
    # Hardie's spreadsheet, customer 0001: x = 2, t_x = 30.43, T = 38.86.
    assert cdnow_rfm.loc["0001", "frequency"] == 2
    assert cdnow_rfm.loc["0001", "recency"] == pytest.approx(30.43, abs=0.005)
    assert cdnow_rfm.loc["0001", "T"] == pytest.approx(38.86, abs=0.005)
