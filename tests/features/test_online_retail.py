"""The real UCI Online Retail data end to end: exact row accounting, then personas.

Expected counts are computed here independently with pandas from the original files, so the
test checks the pipeline against the data, not against numbers copied from its own output.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from personas.lake import Lake
from tests.conftest import shared_data

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def uci_frame() -> pd.DataFrame:
    files = sorted(shared_data("uci-online-retail", "by-day").glob("*.csv.gz"))
    return pd.concat(
        (pd.read_csv(f, dtype={"InvoiceNo": str, "StockCode": str}) for f in files),
        ignore_index=True,
    )


def test_online_retail_row_accounting_is_exact(uci_lake, uci_frame) -> None:
    lake, report = uci_lake
    t = report.totals()
    assert t["rows_in"] == len(uci_frame) == 541_909
    assert t["rows_in"] == t["accepted"] + t["quarantined"] + t["duplicates"]
    assert report.rules()["missing_customer_id"] == int(uci_frame["CustomerID"].isna().sum())
    with_id = uci_frame[uci_frame["CustomerID"].notna()]
    cancelled = with_id["InvoiceNo"].str.startswith("C")
    assert report.rules()["cancellation"] <= int(cancelled.sum())
    con = Lake(lake).connect()
    n_lake = con.execute("SELECT count(*) FROM transactions").fetchone()[0]
    n_quar = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    assert n_lake == t["accepted"]
    assert n_quar == t["quarantined"] + t["duplicates"]
    # the lake never holds a line without a customer, and cancellations are negative
    assert (
        con.execute("SELECT count(*) FROM transactions WHERE customer_id IS NULL").fetchone()[0]
        == 0
    )
    assert (
        con.execute(
            "SELECT count(*) FROM transactions WHERE order_id LIKE 'C%' AND quantity >= 0"
        ).fetchone()[0]
        == 0
    )
    customers = with_id["CustomerID"].nunique()
    assert (
        con.execute("SELECT count(DISTINCT customer_id) FROM transactions").fetchone()[0]
        <= customers
    )


def test_online_retail_yields_personas(uci_lake, tmp_path) -> None:
    from personas.config import SegmentationConfig
    from personas.discover import discover
    from personas.features.build import build_features

    lake, _ = uci_lake
    fs = build_features(lake, None, tmp_path / "features")
    assert fs.as_of.isoformat() == "2011-12-10"
    res = discover(fs.path, tmp_path / "runs", config=SegmentationConfig(map_sample=2000))
    profiles = json.loads((res.run_dir / "profiles.json").read_text())
    personas = profiles["personas"]
    assert 2 <= len(personas) <= 9
    assert res.stability >= 0.8, "the chosen model must be stable under bootstrap resampling"
    sizes = [p["size"] for p in personas]
    assert min(sizes) >= profiles["min_persona_size"]
    names = [p["name"] for p in personas]
    assert len(set(names)) == len(names)
    assert all(p["traits"] and p["actions"] and p["description"] for p in personas)
    a = pd.read_parquet(res.run_dir / "assignments.parquet")
    assert len(a) == fs.customers and a["customer_id"].is_unique
