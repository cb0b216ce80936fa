"""Each shipped mapping on its real dataset: exact row accounting against SOURCE.md's counts.

Expected counts are derived here independently with pandas / pyreadr from the original files
(and checked against the figures quoted in each SOURCE.md), never copied from our own output.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from personas.ingest.batch import ingest
from personas.ingest.mapping import load_mapping
from personas.lake import Lake
from tests.conftest import shared_data

pytestmark = pytest.mark.realdata


def _balanced(report) -> dict[str, int]:
    t = report.totals()
    assert t["rows_in"] == t["accepted"] + t["quarantined"] + t["duplicates"]
    for s in report.sources:
        assert s.balanced(), s
    return t


# ---- UCI Online Retail -------------------------------------------------------------------
@pytest.fixture(scope="module")
def retail() -> pd.DataFrame:
    files = sorted(shared_data("uci-online-retail", "by-day").glob("*.csv.gz"))
    return pd.concat(
        (
            pd.read_csv(
                f,
                dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": str},
                keep_default_na=False,
                na_values=[""],
            )
            for f in files
        ),
        ignore_index=True,
    )


def test_online_retail_accounting_and_rules(uci_lake, retail: pd.DataFrame) -> None:
    lake, report = uci_lake
    t = _balanced(report)
    assert len(retail) == t["rows_in"] == 541_909  # SOURCE.md
    assert len(report.sources) == 305
    rules = report.rules()
    assert rules["missing_customer_id"] == retail["CustomerID"].isna().sum() == 135_080
    rule = load_mapping("online_retail").sources[0].outputs[0].rules.non_product
    with_id = retail[retail["CustomerID"].notna()]
    pattern = re.compile(rule.product_id_pattern)
    non_product = with_id["StockCode"].isin(rule.product_ids) | with_id["StockCode"].map(
        lambda s: bool(pattern.fullmatch(s))
    )
    assert rules["non_product"] == int(non_product.sum())
    priced = with_id[~non_product]
    assert "negative_price" not in rules and (priced["UnitPrice"] < 0).sum() == 0
    assert rules["zero_price"] == int((priced["UnitPrice"] == 0).sum())
    accepted = priced[priced["UnitPrice"] > 0]
    # Description only feeds the category: two lines differing in it alone (two descriptions
    # of one product, same category) are duplicates too
    dup = accepted.duplicated(subset=[c for c in accepted.columns if c != "Description"])
    assert t["duplicates"] == rules["duplicate"] == int(dup.sum())
    assert int(accepted.duplicated().sum()) <= t["duplicates"] <= 5_268  # SOURCE.md: 5,268
    kept = accepted[~dup]
    assert t["accepted"] == len(kept)
    assert (
        t["quarantined"]
        == rules["missing_customer_id"] + rules["non_product"] + rules["zero_price"]
    )
    assert rules["cancellation"] == int(kept["InvoiceNo"].str.startswith("C").sum())
    assert rules["return"] == int((kept["Quantity"] < 0).sum())
    outlier = (kept["Quantity"].abs() > 10_000) | (
        (kept["Quantity"] * kept["UnitPrice"]).abs() > 20_000
    )
    assert rules["extreme_outlier"] == int(outlier.sum())
    con = Lake(lake).connect()
    assert (
        con.execute("SELECT count(*) FROM transactions WHERE is_outlier").fetchone()[0]
        == rules["extreme_outlier"]
    )
    assert con.execute(
        "SELECT count(*), count(DISTINCT customer_id) FROM transactions"
    ).fetchone() == (len(kept), kept["CustomerID"].nunique())
    # ids written as 17850.0 are 17850; London local time = UTC in winter, +1 h in summer
    assert (
        con.execute("SELECT count(*) FROM transactions WHERE customer_id LIKE '%.%'").fetchone()[0]
        == 0
    )
    first, summer = con.execute(
        "SELECT min(ts), min(ts) FILTER (WHERE order_id = '554084') FROM transactions"
    ).fetchone()
    assert first.isoformat() == "2010-12-01T08:26:00+00:00"
    assert summer.isoformat() == "2011-05-22T10:52:00+00:00"  # 11:52 BST
    q = con.execute("SELECT rule, count(*) FROM quarantine GROUP BY 1").fetchall()
    assert dict(q) == {
        k: rules[k] for k in ("missing_customer_id", "non_product", "zero_price", "duplicate")
    }


# ---- CDNOW --------------------------------------------------------------------------------
def _cdnow_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    d = shared_data("cdnow")
    master = pd.read_csv(
        d / "CDNOW_master.txt.gz", sep=r"\s+", header=0, dtype={"customer_id": str, "date": str}
    )
    sample = pd.read_csv(
        d / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["customer_id", "sample_id", "date", "number_of_cds", "dollar_value"],
        dtype={"customer_id": str, "date": str},
    )
    return master, sample


def test_cdnow_master_then_sample(tmp_path: Path) -> None:
    master, sample = _cdnow_frames()
    assert len(master) == 69_659 and len(sample) == 6_919  # SOURCE.md
    d = shared_data("cdnow")
    lake = tmp_path / "lake"
    r1 = ingest([d / "CDNOW_master.txt.gz"], "cdnow", lake)
    t = _balanced(r1)
    dups = int(master.duplicated().sum())
    assert dups == 255  # SOURCE.md: 255 rows are exact duplicates of another row
    assert t == {"rows_in": 69_659, "accepted": 69_659 - dups, "quarantined": 0, "duplicates": dups}
    con = Lake(lake).connect()
    n0, first, last, cust, orders = con.execute(
        "SELECT count(*) FILTER (WHERE amount = 0), min(ts), max(ts), "
        "count(DISTINCT customer_id), count(DISTINCT order_id) FROM transactions"
    ).fetchone()
    assert n0 == int((master.drop_duplicates()["dollar_value"] == 0).sum())  # $0 lines kept
    assert (first.date().isoformat(), last.date().isoformat()) == ("1997-01-01", "1998-06-30")
    assert cust == master["customer_id"].nunique() == 23_570
    assert orders == len(master.drop_duplicates(["customer_id", "date"]))  # one per day
    assert con.execute(
        "SELECT min(customer_id), any_value(order_id) FILTER "
        "(WHERE customer_id = '00001') FROM transactions"
    ).fetchone() == ("00001", "00001@1997-01-01")
    # every sample line is a master line: all of it is a duplicate of the lake
    r2 = ingest([d / "CDNOW_sample.txt"], "cdnow", lake)
    assert _balanced(r2) == {"rows_in": 6_919, "accepted": 0, "quarantined": 0, "duplicates": 6_919}
    con = Lake(lake).connect()  # views list the files committed when they were made
    in_lake = con.execute(
        "SELECT count(*) FROM quarantine WHERE rule = 'duplicate' AND "
        "reason LIKE '%already in the lake%'"
    ).fetchone()[0]
    within = int(sample.drop(columns="sample_id").duplicated().sum())
    assert in_lake == 6_919 - within


def test_cdnow_whole_folder_at_once(tmp_path: Path) -> None:
    r = ingest([shared_data("cdnow")], "cdnow", tmp_path / "lake")
    assert sorted(r.ignored) == ["SHA256SUMS", "SOURCE.md"]
    t = _balanced(r)
    assert t == {
        "rows_in": 69_659 + 6_919,
        "accepted": 69_659 - 255,
        "quarantined": 0,
        "duplicates": 255 + 6_919,
    }
    by_file = {s.source: (s.accepted, s.duplicates) for s in r.sources}
    assert by_file == {"CDNOW_master.txt.gz": (69_404, 255), "CDNOW_sample.txt": (0, 6_919)}


# ---- dunnhumby Complete Journey -----------------------------------------------------------
def test_dunnhumby_complete_journey(tmp_path: Path) -> None:
    import pyreadr

    d = shared_data("dunnhumby-complete-journey")

    def rda(name: str) -> pd.DataFrame:
        return pyreadr.read_r(str(d / f"{name}.rda"))[name]

    tx, products = rda("transactions_sample"), rda("products")
    demo, campaigns, redemptions = rda("demographics"), rda("campaigns"), rda("coupon_redemptions")
    assert (len(tx), len(demo), len(campaigns), len(redemptions)) == (75_000, 801, 6_589, 2_102)
    r = ingest([d], "dunnhumby", tmp_path / "lake")
    assert sorted(r.ignored) == [
        "SHA256SUMS",
        "SOURCE.md",
        "campaign_descriptions.rda",
        "coupons.rda",
        "products.rda",
        "promotions_sample.rda",
    ]
    _balanced(r)
    src = {s.source: s for s in r.sources}
    m = tx.merge(products[["product_id", "department"]], on="product_id", how="left")
    non_product = m["department"] == "COUPON"
    zero = ~non_product & (m["sales_value"] == 0)
    kept = m[~non_product & ~zero]
    s = src["transactions_sample.rda"]
    assert (s.rows_in, s.accepted, s.quarantined, s.duplicates) == (
        75_000,
        len(kept),
        int(non_product.sum() + zero.sum()),
        0,
    )
    assert s.rules == {"non_product": int(non_product.sum()), "zero_price": int(zero.sum())}
    outlier = (kept["quantity"].abs() > 100) | (kept["sales_value"].abs() > 10_000)
    assert s.flags == {
        "extreme_outlier": int(outlier.sum()),
        "unmatched_products": int(kept["department"].isna().sum()),
    }
    assert int((tx["quantity"] > 100).sum()) == 692  # SOURCE.md: fuel and co.
    assert int((~tx["product_id"].isin(products["product_id"])).sum()) == 222  # 99.70% match
    for name, n in (
        ("demographics.rda", 801),
        ("campaigns.rda", 6_589),
        ("coupon_redemptions.rda", 2_102),
    ):
        assert (src[name].rows_in, src[name].accepted) == (n, n)
    con = Lake(tmp_path / "lake").connect()
    # the time-zone trap: stored as the true UTC instant; New York local dates are all 2017
    lo, hi, n2018 = con.execute(
        "SELECT min(timezone('America/New_York', ts)), max(timezone('America/New_York', ts)), "
        "count(*) FILTER (WHERE year(ts) = 2018) FROM transactions"
    ).fetchone()
    assert lo.year == hi.year == 2017
    naive_2018 = kept["transaction_timestamp"].dt.year.eq(2018).sum()
    assert n2018 == naive_2018 and 0 < n2018 <= 23  # SOURCE.md: 23 lines read naively
    assert (
        con.execute("SELECT count(*) FROM transactions WHERE category IS NULL").fetchone()[0]
        == s.flags["unmatched_products"]
    )
    ev = dict(con.execute("SELECT event_type, count(*) FROM events GROUP BY 1").fetchall())
    assert ev == {"campaign_contact": 6_589, "coupon_redeem": 2_102}
    props = json.loads(
        con.execute(
            "SELECT properties FROM events WHERE event_type = 'campaign_contact' LIMIT 1"
        ).fetchone()[0]
    )
    assert set(props) == {"campaign_id", "campaign_type"} and props["campaign_type"]
    cust = con.execute(
        "SELECT count(*), count(age_band), count(household) FROM customers"
    ).fetchone()
    assert cust == (801, int(demo["age"].notna().sum()), int(demo["household_comp"].notna().sum()))


# ---- Hillstrom ----------------------------------------------------------------------------
def test_hillstrom_customers_and_events(tmp_path: Path) -> None:
    f = shared_data("hillstrom-email", "hillstrom.csv.gz")
    df = pd.read_csv(f)
    assert len(df) == 64_000 and int(df.duplicated().sum()) == 6_562  # SOURCE.md
    r = ingest([f], "hillstrom", tmp_path / "lake")
    t = _balanced(r)
    assert t == {"rows_in": 64_000, "accepted": 64_000, "quarantined": 0, "duplicates": 0}
    out = r.sources[0].outputs
    emailed = int((df["segment"] != "No E-Mail").sum())
    assert out["events#1"]["accepted"] == 64_000  # campaign_contact: every arm, control too
    assert out["events#2"]["accepted"] == emailed
    assert out["events#3"]["accepted"] == int((df["visit"] == 1).sum())
    assert (
        out["events#4"]["accepted"]
        == int((df["conversion"] == 1).sum())
        == int((df["spend"] > 0).sum())
        == 578
    )
    con = Lake(tmp_path / "lake").connect()
    assert con.execute("SELECT count(DISTINCT customer_id) FROM customers").fetchone()[0] == 64_000
    regions = dict(con.execute("SELECT region, count(*) FROM customers GROUP BY 1").fetchall())
    assert regions == {
        "urban": int((df["zip_code"] == "Urban").sum()),
        "suburban": int((df["zip_code"] == "Surburban").sum()),
        "rural": int((df["zip_code"] == "Rural").sum()),
    }
    # row 1 of the file is customer H00001, and its attributes are that row's values
    attrs = json.loads(
        con.execute("SELECT attributes FROM customers WHERE customer_id = 'H00001'").fetchone()[0]
    )
    assert attrs["recency"] == str(df.loc[0, "recency"])
    assert attrs["history_segment"] == df.loc[0, "history_segment"]
    ts = con.execute("SELECT DISTINCT ts FROM events").fetchall()
    assert [x[0].isoformat() for x in ts] == ["2008-03-01T00:00:00+00:00"]
    spend = con.execute(
        "SELECT sum(CAST(json_extract(properties, '$.spend') AS DOUBLE)) "
        "FROM events WHERE event_type = 'checkout'"
    ).fetchone()[0]
    assert spend == pytest.approx(df["spend"].sum())
