"""The same per-customer features written as a straightforward pandas groupby (the baseline).

Definitions follow ``personas.features.sql`` line by line (the benchmark checks that both give
the same numbers); the code is what a data scientist would write first: read the tables into
DataFrames, filter to before the as-of date, group by customer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from personas.features.catalog import CATEGORY_PREFIX, CHANNEL_PREFIX, slug
from personas.features.sql import TOP_CATEGORIES, TOP_CHANNELS
from personas.lake import Lake


def _read(lake: Lake, table: str, columns: list[str]) -> pd.DataFrame:
    files = lake.files(table)
    if not files:
        return pd.DataFrame(columns=columns)
    return pd.concat((pd.read_parquet(f, columns=columns) for f in files), ignore_index=True)


def features_pandas(lake_dir: str, as_of: str) -> pd.DataFrame:
    lake = Lake(lake_dir)
    d = pd.Timestamp(as_of, tz="UTC")
    day = pd.Timestamp(as_of)
    tx = _read(
        lake,
        "transactions",
        ["customer_id", "order_id", "ts", "category", "channel", "quantity", "amount", "discount"],
    )
    tx = tx[tx["ts"] < d]
    tx["discount"] = tx["discount"].fillna(0.0)
    tx["gross"] = tx["amount"].clip(lower=0)
    tx["returned"] = (-tx["amount"]).clip(lower=0)
    tx["units"] = tx["quantity"].clip(lower=0)
    tx["disc_pos"] = np.where(tx["amount"] > 0, tx["discount"], 0.0)
    orders = (
        tx.groupby(["customer_id", "order_id"], sort=False)
        .agg(
            ts=("ts", "min"),
            amount=("amount", "sum"),
            gross=("gross", "sum"),
            returned=("returned", "sum"),
            units=("units", "sum"),
            discount=("disc_pos", "sum"),
            channel=("channel", "min"),
        )
        .reset_index()
    )
    orders["is_purchase"] = orders["gross"] > 0
    orders["date"] = orders["ts"].dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
    purch = orders[orders["is_purchase"]]
    g = orders.groupby("customer_id")
    out = pd.DataFrame(index=g.size().index)
    out["frequency"] = g["is_purchase"].sum()
    out["recency_days"] = (day - purch.groupby("customer_id")["date"].max()).dt.days
    out["monetary"] = g["amount"].sum()
    first = g["date"].min()
    out["tenure_days"] = (day - first).dt.days
    out["orders_per_month"] = out["frequency"] * 30.44 / np.maximum(out["tenure_days"], 30.44)
    pg = purch.groupby("customer_id")
    out["avg_order_value"] = pg["gross"].sum() / pg.size()
    out["items_per_order"] = pg["units"].sum() / pg.size()
    gross = g["gross"].sum()
    out["return_rate"] = (g["returned"].sum() / gross).where(gross > 0)
    out["discount_share"] = pg["discount"].sum() / (pg["gross"].sum() + pg["discount"].sum())
    out["discounted_order_share"] = (purch["discount"] > 0).groupby(purch["customer_id"]).mean()
    # purchase days: days with a positive-value line (two columns only: a masked copy of the
    # whole frame would not fit next to it)
    pos_lines = tx.loc[tx["amount"] > 0, ["customer_id", "ts"]]
    days = pd.DataFrame(
        {
            "customer_id": pos_lines["customer_id"],
            "date": pos_lines["ts"].dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize(),
        }
    )
    del pos_lines
    days = days.drop_duplicates().sort_values(["customer_id", "date"])
    days["gap"] = days.groupby("customer_id")["date"].diff().dt.days
    gaps = days.dropna(subset=["gap"]).groupby("customer_id")["gap"]
    del days
    out["mean_days_between"] = gaps.mean()
    mean, sd, n = gaps.mean(), gaps.std(ddof=1), gaps.count()
    out["purchase_regularity"] = (1.0 / (1.0 + sd / mean)).where((n >= 2) & (mean > 0))
    pos = tx[(tx["amount"] > 0) & tx["category"].notna()]
    top = (
        pos.groupby("category")["amount"]
        .sum()
        .reset_index()
        .sort_values(["amount", "category"], ascending=[False, True])["category"]
        .head(TOP_CATEGORIES)
    )
    cs = pos.groupby(["customer_id", "category"])["amount"].sum().unstack(fill_value=0.0)
    tot = cs.sum(axis=1)
    for c in top:
        out[CATEGORY_PREFIX + slug(c)] = cs[c] / tot
    p = cs.div(tot, axis=0)
    ncat = cs.shape[1]
    ent = -(p * np.log(p.where(p > 0))).sum(axis=1)
    out["category_diversity"] = ent / np.log(ncat) if ncat > 1 else 0.0
    chans = (  # the top channels by spend, like the categories
        tx.loc[(tx["amount"] > 0) & tx["channel"].notna(), ["channel", "amount"]]
        .groupby("channel")["amount"]
        .sum()
        .reset_index()
        .sort_values(["amount", "channel"], ascending=[False, True])["channel"]
        .head(TOP_CHANNELS)
    )
    if len(chans) > 1:
        share = pd.crosstab(
            purch["customer_id"], purch["channel"].fillna("(none)"), normalize="index"
        )
        for c in chans:
            out[CHANNEL_PREFIX + slug(c)] = share[c]
    ev = _read(lake, "events", ["customer_id", "ts", "event_type", "session_id"])
    ev = ev[ev["ts"] < d]
    if len(ev):
        cnt = pd.crosstab(ev["customer_id"], ev["event_type"])
        sent = cnt.get("email_sent")
        if sent is not None:
            out["email_open_rate"] = (cnt["email_open"] / sent).clip(upper=1).where(sent > 0)
            out["email_click_rate"] = (cnt["email_click"] / sent).clip(upper=1).where(sent > 0)
        sess_ev = ev[
            ev["event_type"].isin(
                ["page_view", "product_view", "add_to_cart", "checkout", "app_session"]
            )
        ]
        recent = sess_ev[sess_ev["ts"] >= d - pd.Timedelta(days=90)]
        out["sessions_90d"] = recent.groupby("customer_id")["session_id"].nunique()
        out.loc[out.index.isin(ev["customer_id"]) & out["sessions_90d"].isna(), "sessions_90d"] = 0
        allsess = sess_ev.groupby("customer_id")["session_id"].nunique()
        app = (
            sess_ev[sess_ev["event_type"] == "app_session"]
            .groupby("customer_id")["session_id"]
            .nunique()
        )
        out["app_session_share"] = (app.reindex(allsess.index, fill_value=0) / allsess).where(
            allsess > 0
        )
        adds = cnt.get("add_to_cart")
        out["cart_abandonment_rate"] = (1 - cnt["checkout"] / adds).clip(lower=0).where(adds > 0)
        sup = ev[(ev["event_type"] == "support_ticket") & (ev["ts"] >= d - pd.Timedelta(days=365))]
        out["support_contacts_365d"] = sup.groupby("customer_id").size()
        out.loc[
            out.index.isin(ev["customer_id"]) & out["support_contacts_365d"].isna(),
            "support_contacts_365d",
        ] = 0
        out["coupon_redemptions"] = cnt.get("coupon_redeem")
    fb = _read(lake, "feedback", ["customer_id", "ts", "kind", "score", "scale_max", "source_row"])
    fb = fb[fb["ts"] < d]
    if len(fb):
        nps = fb[fb["kind"] == "nps"].sort_values(["customer_id", "ts", "source_row"])
        last = nps.groupby("customer_id").tail(1).set_index("customer_id")
        out["nps_latest"] = last["score"] * 10.0 / last["scale_max"]
        for kind, col in (("csat", "csat_mean"), ("review", "review_mean")):
            k = fb[fb["kind"] == kind]
            out[col] = (k["score"] / k["scale_max"]).groupby(k["customer_id"]).mean()
    out.index.name = "customer_id"
    return out
