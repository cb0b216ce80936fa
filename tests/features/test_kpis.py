"""Loyalty KPIs: retention, observed churn and acquisition per month, checked by a pandas oracle."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from personas.features.kpis import ALL, acquisition, monthly_activity, period_kpis
from personas.lake import Lake


def _oracle(tx: pd.DataFrame, as_of: date, months: int) -> pd.DataFrame:
    """Retention and acquisition per month computed directly from order lines with pandas."""
    tx = tx[(tx["ts"] < pd.Timestamp(as_of, tz="UTC")) & tx["customer_id"].notna()]
    orders = tx.groupby(["customer_id", "order_id"], dropna=False).agg(
        ts=("ts", "min"), top=("amount", "max")
    )
    orders = orders[orders["top"] > 0].reset_index()
    orders["month"] = orders["ts"].dt.tz_convert("UTC").dt.strftime("%Y-%m")
    first = orders.groupby("customer_id")["month"].min()
    end = pd.Period(as_of, "M")
    window = [str(end - k) for k in range(months, 0, -1)]
    rows = []
    for i, m in enumerate(window):
        now = set(orders.loc[orders["month"] == m, "customer_id"])
        prev = set(orders.loc[orders["month"] == window[i - 1], "customer_id"]) if i else None
        rows.append(
            {
                "period": m,
                "active": len(now),
                "retained": None if prev is None else len(prev & now),
                "retention_rate": None if not prev else len(prev & now) / len(prev),
                "new_customers": int((first == m).sum()),
            }
        )
    return pd.DataFrame(rows)


def test_online_retail_retention_and_acquisition_match_pandas(uci_lake) -> None:
    lake, _ = uci_lake
    con = Lake(lake).connect()
    as_of = date(2011, 12, 10)  # the day after the last invoice: December 2011 is cut short
    activity, first = monthly_activity(con, as_of, months=12)
    tx = con.execute("SELECT customer_id, order_id, ts, amount FROM transactions").df()
    con.close()
    ours = period_kpis(activity, first)
    ours = ours[ours["group"] == ALL].reset_index(drop=True)
    want = _oracle(tx, as_of, 12)
    assert (
        list(ours["period"])
        == list(want["period"])
        == [f"{y}-{m:02d}" for y, m in [(2010, 12)] + [(2011, k) for k in range(1, 12)]]
    )
    assert (ours["active"].to_numpy() == want["active"].to_numpy()).all()
    assert (ours["new_customers"].to_numpy() == want["new_customers"].to_numpy()).all()
    assert ours["retained"].iloc[1:].astype(int).tolist() == want["retained"].iloc[1:].tolist()
    np.testing.assert_allclose(
        ours["retention_rate"].iloc[1:].astype(float), want["retention_rate"].iloc[1:].astype(float)
    )
    np.testing.assert_allclose(
        ours["observed_churn_rate"].iloc[1:].astype(float),
        1 - want["retention_rate"].iloc[1:].astype(float),
    )
    assert pd.isna(ours["retention_rate"].iloc[0])  # no month before the window's first
    # Online Retail's history starts in 2010-12: every customer of that month is new then
    assert ours["new_customers"].iloc[0] == ours["active"].iloc[0]
    print(ours[["period", "active", "retention_rate", "new_customers"]].to_string())
    by_channel = acquisition(first)
    assert by_channel["new_customers"].sum() == len(first)


def test_groups_partition_all_customers(demo_lake) -> None:
    con = Lake(demo_lake).connect()
    activity, first = monthly_activity(con, date(2024, 7, 1), months=6)
    con.close()
    ids = first["customer_id"].astype(str)
    groups = pd.Series(np.where(np.arange(len(ids)) % 3 == 0, "A", "B"), index=ids)
    k = period_kpis(activity, first, groups)
    pivot = k.pivot(index="period", columns="group", values="active")
    assert (pivot["A"] + pivot["B"] == pivot[ALL]).all()
    new = k.pivot(index="period", columns="group", values="new_customers")
    assert (new["A"] + new["B"] == new[ALL]).all() and new[ALL].sum() > 0
    rates = k["retention_rate"].dropna()
    assert ((rates >= 0) & (rates <= 1)).all() and len(rates) == 3 * 5
    with pytest.raises(KeyError):
        k.pivot(index="period", columns="group", values="no_such_column")
