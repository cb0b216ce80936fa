"""Loyalty KPIs per month, per persona and for everyone: retention, churn, acquisition.

Definitions (also in ``docs/features.md``). A *purchase* is an order with at least one line of
positive value (as ``frequency`` counts them); a customer is *active* in a calendar month (UTC)
when they made a purchase in it. For a month m and a group of customers (a persona, or all):

* retention rate = customers active in m-1 who are active in m / customers active in m-1;
* observed churn rate = customers active in m-1 who are not active in m / customers active in
  m-1 (= 1 - retention), shown next to the modelled churn risk (BTYD) of the same customers;
* new customers = customers whose first purchase (over the whole history before the as-of
  date) is in m, by the channel of that first order and by their (likely) persona.

The activity is read once with SQL (:func:`monthly_activity`: customer x month, first purchase
and its channel); the KPIs are plain pandas over it (:func:`period_kpis`), so the same table
serves every grouping.
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd

from personas.sqltext import literal

ACTIVITY = "activity.parquet"  # customer x active month (the KPIs' input)
FIRST_PURCHASE = "first_purchase.parquet"  # customer, first purchase month and channel
KPI_FILES = (ACTIVITY, FIRST_PURCHASE)  # written beside features.parquet by either engine

ALL = "ALL"


def monthly_activity(
    con: duckdb.DuckDBPyConnection, as_of: date, months: int = 12
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(activity, first) before ``as_of``: customer x active month over the last ``months``
    complete months (a month cut by the as-of date is left out: its retention would look
    low only because it is short), and each customer's first purchase month and channel."""
    t = literal(f"{as_of.isoformat()} 00:00:00+00")
    orders = f"""
        SELECT customer_id, min(ts) AS ts, min(channel) AS channel
        FROM transactions WHERE ts < {t} AND customer_id IS NOT NULL
        GROUP BY customer_id, order_id HAVING max(amount) > 0"""
    end = date(as_of.year, as_of.month, 1)
    start = _add_months(end, -months)
    lo, hi = (literal(d.isoformat() + " 00:00:00+00") for d in (start, end))
    activity = con.execute(
        f"""SELECT DISTINCT customer_id, strftime(timezone('UTC', ts), '%Y-%m') AS period
            FROM ({orders}) WHERE ts >= {lo} AND ts < {hi} ORDER BY 1, 2"""
    ).df()
    first = con.execute(
        f"""SELECT customer_id, strftime(timezone('UTC', min(ts)), '%Y-%m') AS first_period,
                   arg_min(channel, ts) AS first_channel
            FROM ({orders}) GROUP BY 1 ORDER BY 1"""
    ).df()
    return activity, first


def period_kpis(
    activity: pd.DataFrame,
    first: pd.DataFrame,
    groups: pd.Series | None = None,
) -> pd.DataFrame:
    """Retention, observed churn and new customers per month and group.

    ``groups`` maps customer_id -> group (a persona id); every customer also counts in
    :data:`ALL`. The first month of ``activity`` has no previous month, so its retention is
    missing. Columns: group, period, active, active_prev, retained, retention_rate,
    observed_churn_rate, new_customers.
    """
    periods = sorted(activity["period"].unique())
    # Vectorised (a set per month and group took 11 CPU-s at 1M customers): a customer active
    # in a month was retained when the same customer was active the month before; the lists
    # are distinct (customer, month) pairs, and a customer belongs to one group.
    act = activity[["customer_id", "period"]].drop_duplicates()
    month = _month_number(act["period"])
    cust = pd.factorize(act["customer_id"])[0].astype(np.int64)
    key = cust * 100_000 + month
    had_prev = np.isin(key - 1, key)
    firsts = first[first["first_period"].isin(periods)][["customer_id", "first_period"]]
    pos = {p: i for i, p in enumerate(periods)}
    at = act["period"].map(pos).to_numpy()
    member = {ALL: np.ones(len(act), dtype=bool)}
    new_of = {ALL: firsts["first_period"]}
    if groups is not None:
        g = groups.astype(str)
        act_group = act["customer_id"].map(g).to_numpy()
        first_group = firsts["customer_id"].map(g)
        for name in sorted(g.dropna().unique()):
            member[name] = act_group == name
            new_of[name] = firsts.loc[(first_group == name).to_numpy(), "first_period"]
    rows = []
    for name, inside in member.items():
        active = np.bincount(at[inside], minlength=len(periods))
        kept = np.bincount(at[inside & had_prev], minlength=len(periods))
        new = new_of[name].value_counts()
        for i, p in enumerate(periods):
            consecutive = i > 0 and _consecutive(periods[i - 1], p)
            prev = int(active[i - 1]) if consecutive else None
            retained = int(kept[i]) if consecutive else None
            rate = retained / prev if prev else None
            rows.append(
                {
                    "group": name,
                    "period": p,
                    "active": int(active[i]),
                    "active_prev": prev,
                    "retained": retained,
                    "retention_rate": rate,
                    "observed_churn_rate": None if rate is None else 1.0 - rate,
                    "new_customers": int(new.get(p, 0)),
                }
            )
    return pd.DataFrame(rows)


def acquisition(first: pd.DataFrame, by: pd.Series | None = None) -> pd.DataFrame:
    """New customers per first-purchase month and channel (or another key, e.g. a persona)."""
    key = first["first_channel"] if by is None else first["customer_id"].map(by.astype(str))
    out = first.assign(key=key.fillna("unknown")).groupby(["first_period", "key"]).size()
    return out.rename("new_customers").reset_index()


def persona_summary(
    X: pd.DataFrame, groups: pd.Series, monthly: pd.DataFrame, min_size: int
) -> list[dict[str, object]]:
    """One KPI row per persona (and ALL) for the last complete month and the features.

    Latest retention and observed churn from ``monthly``; means of modelled churn risk,
    12-month CLV, NPS and CSAT, and loyalty participation (member share, tier mix) from the
    features ``X``. A group below ``min_size`` customers is left out.
    """
    g = groups.astype(str).reindex(X.index.astype(str))
    rows = []
    last = monthly.dropna(subset=["retention_rate"]).sort_values("period")
    for name in [ALL, *sorted(g.dropna().unique())]:
        mask = np.ones(len(X), bool) if name == ALL else (g == name).to_numpy()
        if mask.sum() < min_size:
            continue
        sub = X.loc[mask]
        m = last[last["group"] == name].tail(1)
        row: dict[str, object] = {"group": name, "customers": int(mask.sum())}
        if len(m):
            r = m.iloc[0]
            row.update(
                period=r["period"],
                retention_rate=float(r["retention_rate"]),
                observed_churn_rate=float(r["observed_churn_rate"]),
                new_customers=int(r["new_customers"]),
            )
        for col, key in (
            ("churn_risk", "modelled_churn_risk"),
            ("clv_12m", "clv_12m"),
            ("nps_latest", "nps_mean"),
            ("csat_mean", "csat_mean"),
        ):
            if col in sub.columns and sub[col].notna().any():
                row[key] = float(pd.to_numeric(sub[col], errors="coerce").mean())
        if "loyalty_member" in sub.columns and sub["loyalty_member"].notna().any():
            row["loyalty_participation"] = float(sub["loyalty_member"].astype(float).mean())
        if "loyalty_tier" in sub.columns and sub["loyalty_tier"].notna().any():
            tiers = sub["loyalty_tier"].dropna().astype(str).value_counts(normalize=True)
            row["loyalty_tiers"] = {str(k): round(float(v), 4) for k, v in tiers.items()}
        rows.append(row)
    return rows


def _month_number(periods: pd.Series) -> np.ndarray:
    """'YYYY-MM' -> year * 12 + month, as integers."""
    text = periods.astype(str)
    return (text.str[:4].astype(int) * 12 + text.str[5:7].astype(int)).to_numpy(np.int64)


def _consecutive(a: str, b: str) -> bool:
    ya, ma = map(int, a.split("-"))
    yb, mb = map(int, b.split("-"))
    return (yb * 12 + mb) - (ya * 12 + ma) == 1


def _add_months(d: date, n: int) -> date:
    k = d.year * 12 + d.month - 1 + n
    return date(k // 12, k % 12 + 1, 1)


DEFINITIONS = {
    "purchase": "an order with at least one line of positive value",
    "active": "made a purchase in the calendar month (UTC)",
    "retention_rate": "customers active in the previous month who bought again this month, "
    "over customers active in the previous month",
    "observed_churn_rate": "customers active in the previous month who did not buy this "
    "month, over customers active in the previous month (1 - retention)",
    "new_customers": "customers whose first purchase ever (before the as-of date) is in the month",
    "modelled_churn_risk": "mean churn_risk (1 - P(alive), BTYD model) of the group's customers",
    "loyalty_participation": "share of the group's customers who are loyalty members",
}


def run_kpis(
    X: pd.DataFrame,
    assignments: pd.DataFrame,
    activity: pd.DataFrame,
    first: pd.DataFrame,
    min_size: int,
) -> dict[str, object]:
    """The ``kpis`` block of a run's metrics: per persona (and group) and for all customers.

    Customers are grouped by their persona id (not-profiled groups by their group id); groups
    below ``min_size`` are left out. New customers are also counted by first channel and by
    likely persona (the persona a new customer most likely belongs to, "undecided" or none).
    """
    ids = assignments["customer_id"].astype(str)
    groups = pd.Series(assignments["persona_id"].astype(str).to_numpy(), index=ids)
    sizes = groups.value_counts()
    groups = groups[groups.map(sizes) >= min_size]
    monthly = period_kpis(activity, first, groups)
    by_likely = None
    if "likely_persona" in assignments.columns:
        lp = pd.Series(assignments["likely_persona"].to_numpy(), index=ids)
        lp = lp.where(lp.notna(), groups.reindex(ids).to_numpy()).fillna("none")
        by_likely = acquisition(first[first["first_period"].isin(monthly["period"])], lp)
    recent = first[first["first_period"].isin(monthly["period"])]
    return {
        "definitions": DEFINITIONS,
        "summary": persona_summary(X.set_axis(X.index.astype(str)), groups, monthly, min_size),
        "monthly": monthly.replace({np.nan: None}).to_dict(orient="records"),
        "acquisition_by_channel": acquisition(recent).to_dict(orient="records"),
        "acquisition_by_likely_persona": None
        if by_likely is None
        else _small_counts(by_likely, min_size).to_dict(orient="records"),
    }


def _small_counts(df: pd.DataFrame, min_size: int) -> pd.DataFrame:
    """Keys (likely personas) with fewer new customers in total than ``min_size`` pooled."""
    totals = df.groupby("key")["new_customers"].sum()
    small = totals[totals < min_size].index
    out = df.assign(key=df["key"].where(~df["key"].isin(small), "other (small groups)"))
    return out.groupby(["first_period", "key"], as_index=False)["new_customers"].sum()
