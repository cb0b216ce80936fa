"""Features are correct in time, defined for what the lake holds, and checked by hand.

As-of correctness is the property a feature store must never break: a feature at date D may
only use rows before D, so adding later rows changes nothing and a customer first seen on or
after D does not exist yet.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from personas.features.build import build_features, compute, load_features
from personas.features.catalog import CATALOG, GROUPS, lookup
from personas.ingest.batch import ingest
from personas.lake import Lake
from tests.conftest import REPO

AS_OF = date(2024, 7, 1)


def _write(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


MAPPING = """
name: tiny
sources:
  - name: tx
    files: "tx*.csv"
    table: transactions
    columns:
      customer_id: customer_id
      order_id: order_id
      ts: {column: ts, format: "%Y-%m-%d %H:%M:%S"}
      category: category
      channel: channel
      quantity: quantity
      unit_price: unit_price
      discount: discount
  - name: fb
    files: "fb*.csv"
    table: feedback
    columns: {customer_id: customer_id, ts: {column: ts, format: "%Y-%m-%d %H:%M:%S"},
              kind: kind, score: score}
"""


def _line(
    c: str,
    o: str,
    ts: str,
    cat: str = "home",
    q: float = 1,
    p: float = 10,
    ch: str = "web",
    d: float = 0,
) -> dict:
    return {
        "customer_id": c,
        "order_id": o,
        "ts": ts,
        "category": cat,
        "channel": ch,
        "quantity": q,
        "unit_price": p,
        "discount": d,
    }


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    m = tmp_path / "tiny.yaml"
    m.write_text(MAPPING)
    src = tmp_path / "src"
    src.mkdir()
    _write(
        src / "tx1.csv",
        [
            # customer a: three purchase days, one return, two categories, two channels
            _line("a", "o1", "2024-01-10 10:00:00", "home", 2, 10),
            _line("a", "o2", "2024-03-10 10:00:00", "toys", 1, 30, "app", 5),
            _line("a", "r2", "2024-03-20 10:00:00", "toys", -1, 30, "app"),
            _line("a", "o3", "2024-06-08 10:00:00", "home", 1, 20),
            # customer b: one purchase
            _line("b", "o4", "2024-05-01 09:00:00", "toys", 3, 5),
        ],
    )
    _write(
        src / "fb1.csv",
        [
            {"customer_id": "a", "ts": "2024-02-01 10:00:00", "kind": "nps", "score": 3},
            {"customer_id": "a", "ts": "2024-06-01 10:00:00", "kind": "nps", "score": 9},
            {"customer_id": "a", "ts": "2024-06-02 10:00:00", "kind": "csat", "score": 4},
        ],
    )
    lake = tmp_path / "lake"
    ingest([src / "tx1.csv", src / "fb1.csv"], m, lake)
    return lake, m


def test_features_match_hand_computed_values(tiny) -> None:
    lake, _ = tiny
    X = compute(Lake(lake).connect(), AS_OF, clv=False)
    a, b = X.loc["a"], X.loc["b"]
    assert a["frequency"] == 3 and b["frequency"] == 1
    assert a["recency_days"] == (AS_OF - date(2024, 6, 8)).days
    assert a["tenure_days"] == (AS_OF - date(2024, 1, 10)).days
    gross = 2 * 10 + (1 * 30 - 5) + 20  # amount = quantity x price - discount
    assert a["monetary"] == pytest.approx(gross - 30)  # the return nets off
    assert a["avg_order_value"] == pytest.approx(gross / 3)
    assert a["return_rate"] == pytest.approx(30 / gross)
    assert a["discount_share"] == pytest.approx(5 / (gross + 5))
    assert a["discounted_order_share"] == pytest.approx(1 / 3)
    gaps = [
        (date(2024, 3, 10) - date(2024, 1, 10)).days,
        (date(2024, 6, 8) - date(2024, 3, 10)).days,
    ]
    assert a["mean_days_between"] == pytest.approx(np.mean(gaps))
    assert np.isnan(a["purchase_regularity"]) or a["purchase_regularity"] == pytest.approx(
        1 / (1 + np.std(gaps, ddof=1) / np.mean(gaps))
    )
    assert a["cat_share__home"] == pytest.approx(40 / gross)
    assert a["chan_share__web"] == pytest.approx(2 / 3)
    assert a["nps_latest"] == 9 and a["nps_class"] == "promoter"
    assert a["csat_mean"] == pytest.approx(4 / 5)
    assert np.isnan(b["nps_latest"])  # never answered: missing, not zero
    assert a["lifecycle"] == "repeat" and b["lifecycle"] == "one_time"


def test_rows_on_or_after_as_of_change_nothing(tiny, tmp_path: Path) -> None:
    lake, m = tiny
    before = compute(Lake(lake).connect(), AS_OF, clv=False)
    late = _write(
        tmp_path / "src" / "tx2.csv",
        [
            _line("a", "o9", "2024-07-01 00:00:00", "home", 5, 100),  # exactly at the cut-off
            _line("a", "o10", "2024-08-01 10:00:00", "toys", 1, 7),
            _line("c", "o11", "2024-07-02 10:00:00", "toys", 1, 7),  # first seen after D
        ],
    )
    ingest([late], m, lake)
    after = compute(Lake(lake).connect(), AS_OF, clv=False)
    pd.testing.assert_frame_equal(before, after)
    assert "c" not in after.index
    later = compute(Lake(lake).connect(), date(2024, 9, 1), clv=False)
    assert "c" in later.index and later.loc["a", "frequency"] == 5


def test_absent_tables_leave_their_features_out(tiny) -> None:
    lake, _ = tiny
    X = compute(Lake(lake).connect(), AS_OF, clv=False)
    for name in (
        "email_open_rate",
        "sessions_90d",
        "support_contacts_365d",
        "loyalty_member",
        "coupon_redemptions",
    ):
        assert name not in X.columns  # no events/customers tables: not zero-filled
    assert "nps_latest" in X.columns


def test_demo_features_cover_every_catalogue_group(demo_lake: Path, tmp_path: Path) -> None:
    fs = build_features(demo_lake, None, tmp_path / "f")
    X = load_features(fs.path)
    groups = {lookup(c).group for c in X.columns if c != "lifecycle"}
    assert set(GROUPS) <= groups
    assert X.index.is_unique and len(X) == fs.customers
    assert "as_of" not in X.columns  # the folder name must not leak in as a column
    for c in ("email_open_rate", "email_click_rate", "return_rate", "p_alive", "churn_risk"):
        s = X[c].dropna()
        assert ((s >= 0) & (s <= 1.000001)).all(), c
    for d in ("economic", "functional", "emotional", "symbolic"):
        s = X[f"value_{d}"]
        assert s.between(-1, 1).all() and s.std() > 0
    assert (X["clv_12m"].dropna() >= 0).all()
    catalog = (fs.catalog_path).read_text()
    assert all(f.name in catalog for f in CATALOG if f.name in X.columns)
    # The CLV model was chosen on the last quarter of the history and the choice recorded.
    clv = json.loads(catalog)["clv"]
    sel = clv["selection"]
    assert len(sel["candidates"]) == 4 and sum(r["chosen"] for r in sel["candidates"]) == 1
    assert clv["model"]["name"] == sel["chosen"] and clv["verdict"] in {"sound", "caution"}
    span = sel["holdout_end"] - min(sel["tracking"]["day"]) + 7
    assert 0.2 < (sel["holdout_end"] - sel["calibration_end"]) / span < 0.3
    assert sel["tracking"]["actual"] == sorted(sel["tracking"]["actual"])
    # days to the next purchase: blank exactly for one-purchase-day customers, said so
    days, once = X["expected_days_to_next_purchase"], X["frequency"] <= 1
    nxt = clv["next_purchase"]
    assert days[once].isna().all() and nxt["customers"] == days.notna().sum()
    assert sum(nxt["blank"].values()) == days.isna().sum() - X["clv_12m"].isna().sum()
    assert days.dropna().between(1, 3650).all()


FULL = dict(
    tables={"transactions", "customers", "events", "feedback"},
    event_types={
        "email_sent",
        "email_open",
        "email_click",
        "app_session",
        "page_view",
        "add_to_cart",
        "checkout",
        "support_ticket",
        "coupon_redeem",
        "campaign_contact",
    },
    feedback_kinds={"nps", "csat", "review"},
    customer_columns={"country", "loyalty_member", "age_band", "loyalty_tier"},
    has_discount=True,
    has_sessions=True,
    categories=["home", "toys"],
    channels=["web", "app"],
)


@pytest.mark.parametrize("dialect", ["spark", "bigquery", "snowflake", "postgres"])
def test_one_feature_definition_transpiles_to_other_engines(dialect: str) -> None:
    """The same SQL must be expressible on a distributed engine (strict: no silent loss)."""
    from personas.features.portable import feature_sql
    from personas.features.sql import Context

    sql = feature_sql(Context(as_of=AS_OF, **FULL), dialect)
    assert "recency_days" in sql and "campaign_response_rate" in sql and "value_symbolic" in sql


def test_a_utc_wall_clock_transpiles_to_spark_whatever_its_session_zone() -> None:
    """DuckDB's ``timezone('UTC', ts)`` (the KPIs' calendar months) has no Spark namesake."""
    from personas.features.portable import transpile

    sql = "SELECT strftime(timezone('UTC', ts), '%Y-%m') AS m FROM t"
    got = transpile(sql, "spark")
    assert "TO_UTC_TIMESTAMP(ts, CURRENT_TIMEZONE())" in got and "TIMEZONE('UTC'" not in got
    with pytest.raises(ValueError, match="only 'UTC'"):
        transpile(sql.replace("'UTC'", "'Europe/Helsinki'"), "spark")


def test_feature_docs_are_rendered_from_the_catalogue() -> None:
    from personas.features.docs import render_markdown

    doc = REPO / "docs" / "features.md"
    assert doc.read_text(encoding="utf-8") == render_markdown(), (
        "docs/features.md is stale: run `uv run python -m personas.features.docs > "
        "docs/features.md`"
    )
    for f in CATALOG:
        assert f"`{f.name}`" in doc.read_text(encoding="utf-8")


EVENTS_MAPPING = MAPPING.replace(
    "  - name: fb",
    """  - name: ev
    files: "ev*.csv"
    table: events
    columns: {customer_id: customer_id, ts: {column: ts, format: "%Y-%m-%d %H:%M:%S"},
              event_type: event_type, session_id: session_id}
  - name: fb""",
)


def test_sessions_and_campaign_response_from_events(tmp_path: Path) -> None:
    """No session is 0 sessions (not unknown); a response is a purchase in (contact, +14 d]."""
    m = tmp_path / "ev.yaml"
    m.write_text(EVENTS_MAPPING)
    src = tmp_path / "src"
    src.mkdir()
    tx = [
        _line("a", "o1", "2024-05-01 12:00:00"),  # same day, after the 09:00 contact: response
        _line("a", "o2", "2024-06-01 08:00:00"),  # same day, before the 10:00 contact: no
        _line("a", "o3", "2024-06-15 10:00:00"),  # exactly 14 days after that contact: response
        _line("b", "o4", "2024-05-20 10:00:00"),
        _line("b", "o5", "2024-06-05 10:00:01"),  # 14 days and 1 s after b's contact: no
    ]
    ev = [
        {"customer_id": "a", "ts": "2024-05-01 09:00:00", "event_type": "campaign_contact"},
        {"customer_id": "a", "ts": "2024-06-01 10:00:00", "event_type": "campaign_contact"},
        {
            "customer_id": "a",
            "ts": "2024-06-20 10:00:00",
            "event_type": "page_view",
            "session_id": "s1",
        },
        {
            "customer_id": "a",
            "ts": "2024-06-20 10:05:00",
            "event_type": "app_session",
            "session_id": "s1",
        },
        {
            "customer_id": "a",
            "ts": "2024-01-20 10:00:00",
            "event_type": "page_view",
            "session_id": "s0",
        },
        {"customer_id": "b", "ts": "2024-05-22 10:00:00", "event_type": "campaign_contact"},
    ]
    lake = tmp_path / "lake"
    ingest([_write(src / "tx1.csv", tx), _write(src / "ev1.csv", ev)], m, lake)
    X = compute(Lake(lake).connect(), AS_OF, clv=False)
    assert X.loc["a", "campaign_response_rate"] == pytest.approx(1.0)
    assert X.loc["b", "campaign_response_rate"] == pytest.approx(0.0)
    assert X.loc["a", "sessions_90d"] == 1 and X.loc["a", "app_session_share"] == 0.5
    assert X.loc["b", "sessions_90d"] == 0  # events, but no session: none, not unknown
    assert np.isnan(X.loc["b", "app_session_share"])
    assert X.loc["a", "mean_days_between"] == pytest.approx((31 + 14) / 2)


def test_lake_btyd_summary_matches_rfm_summary(demo_lake: Path) -> None:
    """The SQL summary behind the CLV features is ``btyd.rfm_summary`` exactly.

    It counts purchase days as integer day numbers and ends T on the last day before as_of:
    an off-by-one there would shift every customer's T and P(alive).
    """
    from personas.features.btyd import rfm_summary
    from personas.features.clv import summary_from_lake

    con = Lake(demo_lake).connect()
    as_of = date(2024, 10, 1)
    ours = summary_from_lake(con, as_of).to_pandas().set_index("customer_id").sort_index()
    sql = "SELECT customer_id, ts, amount FROM transactions WHERE amount > 0"
    tx = con.sql(sql).to_arrow_table().to_pandas()
    ref = rfm_summary(tx, as_of.isoformat(), time_unit="W").sort_index()
    assert len(ours) == len(ref) > 1000
    assert list(ours.index) == [str(i) for i in ref.index]
    for c in ("frequency", "recency", "T", "monetary_value"):
        np.testing.assert_allclose(ours[c].to_numpy(float), ref[c].to_numpy(float), rtol=1e-9)


def test_discovery_takes_the_newest_features_of_the_lake_not_the_largest_as_of(
    demo_lake: Path, tmp_path: Path
) -> None:
    """A trial `--as-of 2030-01-01` must not become what the next discovery uses."""
    import os

    from personas.features.build import latest_features

    lake = Lake(demo_lake)
    trial = build_features(lake, "2030-01-01", tmp_path, clv=False)
    normal = build_features(lake, None, tmp_path, clv=False)
    os.utime(trial.path, (1, 1))  # computed long ago
    path, why = latest_features(tmp_path, lake.fingerprint())
    assert path == normal.path and "current lake" in why
    path, why = latest_features(tmp_path, "another-lake-state")
    assert path == normal.path and "none match the lake" in why
