"""Incremental and idempotent ingestion on the real Online Retail daily files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from personas.features.build import compute
from personas.ingest.batch import ingest
from personas.lake import Lake
from tests.conftest import shared_data

pytestmark = pytest.mark.realdata

CANON = (
    "customer_id, order_id, ts, product_id, category, quantity, unit_price, amount, "
    "channel, discount, currency, is_outlier"
)


def _days(prefix: str | tuple[str, ...] = "") -> list[Path]:
    files = sorted(shared_data("uci-online-retail", "by-day").glob("*.csv.gz"))
    return [f for f in files if f.name.startswith(prefix)] if prefix else files


def _same_content(a: Path, b: Path, quarantine: bool = True) -> None:
    """Both lakes hold the same canonical rows (as a multiset) and the same quarantine."""
    con = Lake(a).connect()
    files_b = [str(p) for p in Lake(b).files("transactions")]
    con.execute(f"CREATE VIEW other AS SELECT * FROM read_parquet({files_b})")
    for x, y in (("transactions", "other"), ("other", "transactions")):
        assert (
            con.execute(
                f"SELECT count(*) FROM (SELECT {CANON} FROM {x} EXCEPT ALL SELECT {CANON} FROM {y})"
            ).fetchone()[0]
            == 0
        )
    if not quarantine:
        return
    qb = [str(p) for p in Lake(b).files("quarantine")]
    q = "SELECT rule, count(*) FROM {} GROUP BY 1 ORDER BY 1"
    assert (
        con.execute(q.format("quarantine")).fetchall()
        == con.execute(q.format(f"read_parquet({qb})")).fetchall()
    )


def test_reingesting_adds_nothing(tmp_path: Path) -> None:
    days = _days("2010-12-0")
    lake = tmp_path / "lake"
    first = ingest(days, "online_retail", lake)
    assert first.batch_id and len(first.sources) == len(days)
    before = Lake(lake).connect().execute("SELECT count(*) FROM transactions").fetchone()[0]
    again = ingest(days, "online_retail", lake)
    assert again.batch_id is None and again.sources == []
    assert [s for s, _ in again.skipped] == [f.name for f in days]
    assert len(Lake(lake).batches()) == 1
    # the same file under another name has the same content: skipped as well
    copy = tmp_path / "renamed.csv.gz"
    shutil.copy(days[0], copy)
    assert ingest([copy], "online_retail", lake).skipped == [("renamed.csv.gz", first.batch_id)]
    assert Lake(lake).connect().execute("SELECT count(*) FROM transactions").fetchone()[0] == before


@pytest.mark.parametrize("sort_max", [None, 0], ids=["hashes-sorted", "hashes-in-duckdb"])
def test_overlapping_export_only_adds_new_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sort_max: int | None
) -> None:
    """Both ways of finding repeated hashes (numpy sort; DuckDB for huge batches) agree."""
    import gzip

    if sort_max is not None:
        monkeypatch.setattr("personas.ingest.stage.HASH_SORT_MAX_ROWS", sort_max)

    day = _days("2010-12-01")[0]
    lines = gzip.decompress(day.read_bytes()).decode().splitlines(keepends=True)
    lake = tmp_path / "lake"
    half = tmp_path / "a" / "2010-12-01.csv"
    half.parent.mkdir()
    half.write_text("".join(lines[:1500]))
    r1 = ingest([half], "online_retail", lake)
    r2 = ingest([day], "online_retail", lake)  # the full day re-exported later
    t1, t2 = r1.totals(), r2.totals()
    assert t2["rows_in"] == len(lines) - 1
    # every accepted row of the first export is now a duplicate of the lake
    assert t2["duplicates"] >= t1["accepted"]
    whole = ingest([day], "online_retail", tmp_path / "whole")
    assert t1["accepted"] + t2["accepted"] == whole.totals()["accepted"]
    _same_content(lake, tmp_path / "whole", quarantine=False)
    # the re-export's rejected rows are rejected again: counted, not lost
    assert t2["quarantined"] == whole.totals()["quarantined"]
    assert whole.totals()["duplicates"] > 0  # the day repeats some of its own lines


def test_both_ways_of_finding_duplicate_hashes_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    days = _days("2010-12-0")
    sorted_ = ingest(days, "online_retail", tmp_path / "sorted")
    monkeypatch.setattr("personas.ingest.stage.HASH_SORT_MAX_ROWS", 0)
    in_duckdb = ingest(days, "online_retail", tmp_path / "duckdb")
    assert sorted_.totals()["duplicates"] > 0
    assert [s.outputs for s in sorted_.sources] == [s.outputs for s in in_duckdb.sources]
    _same_content(tmp_path / "sorted", tmp_path / "duckdb")


def _day_by_day(files: list[Path], lake: Path) -> dict[str, int]:
    totals = dict.fromkeys(("rows_in", "accepted", "quarantined", "duplicates"), 0)
    for f in files:
        r = ingest([f], "online_retail", lake)
        for k, v in r.totals().items():
            totals[k] += v
    return totals


def test_day_by_day_equals_all_at_once_two_months(tmp_path: Path) -> None:
    files = _days(("2010-12", "2011-01"))
    assert len(files) == 44
    daily = _day_by_day(files, tmp_path / "daily")
    once = ingest(files, "online_retail", tmp_path / "once").totals()
    assert daily == once
    assert len(Lake(tmp_path / "daily").batches()) == 44
    _same_content(tmp_path / "daily", tmp_path / "once")


@pytest.mark.slow
def test_day_by_day_equals_all_at_once_all_305_days(tmp_path: Path, uci_lake) -> None:
    files = _days()
    assert len(files) == 305
    lake_once, report = uci_lake
    daily = _day_by_day(files, tmp_path / "daily")
    assert daily == report.totals()
    _same_content(tmp_path / "daily", lake_once)


def test_late_file_for_an_old_month_is_picked_up(tmp_path: Path) -> None:
    files = _days("2010-12")
    late = next(f for f in files if f.name == "2010-12-07.csv.gz")
    lake = tmp_path / "lake"
    ingest([f for f in files if f != late], "online_retail", lake)
    ingest(_days("2011-01"), "online_retail", lake)  # later months arrive first
    dec = Lake(lake).files("transactions", partitions={(2010, 12)})
    before = compute(Lake(lake).connect(), "2011-02-01", clv=False)
    r = ingest([late], "online_retail", lake)
    assert r.totals()["accepted"] > 0
    dec_after = Lake(lake).files("transactions", partitions={(2010, 12)})
    assert len(dec_after) == len(dec) + 1  # the old month's partition gained a file
    assert dec_after[-1].parent.name == "month=12" and r.batch_id in dec_after[-1].name
    con = Lake(lake).connect()
    assert (
        con.execute(
            "SELECT count(*) FROM transactions WHERE CAST(ts AS DATE) = '2010-12-07'"
        ).fetchone()[0]
        == r.totals()["accepted"]
    )
    after = compute(con, "2011-02-01", clv=False)
    late_customers = {
        c
        for (c,) in con.execute(
            "SELECT DISTINCT customer_id FROM transactions WHERE source = '2010-12-07.csv.gz'"
        ).fetchall()
    }
    new = late_customers - set(before.index)
    assert new and new <= set(after.index)  # features see customers first seen on the late day
    assert after["frequency"].sum() > before["frequency"].sum()


def test_a_batch_whose_rows_are_all_rejected_against_a_lake_with_rows(tmp_path: Path) -> None:
    """Nothing accepted, lake files to compare with: every row quarantined, nothing lost."""
    head = "customer_id,first_seen,country,region,age_band,income_band,household,"
    head += "loyalty_member,loyalty_tier,is_prospect,full_name,email,phone\n"
    row = "{},2023-02-27 02:24:21,FI,urban,25-34,low,single,false,,false,A B,a@b.example,+1\n"
    good, bad = tmp_path / "a" / "customers-1.csv", tmp_path / "b" / "customers-2.csv"
    good.parent.mkdir()
    bad.parent.mkdir()
    good.write_text(head + row.format("C1") + row.format("C2"), encoding="utf-8")
    bad.write_text(head + row.format("") * 3, encoding="utf-8")  # no customer id: rejected
    lake = tmp_path / "lake"
    assert ingest([good], "demo", lake).totals()["accepted"] == 2
    report = ingest([bad], "demo", lake)
    assert report.totals() == {"rows_in": 3, "accepted": 0, "quarantined": 3, "duplicates": 0}
    assert Lake(lake).counts()["customers"] == 2
