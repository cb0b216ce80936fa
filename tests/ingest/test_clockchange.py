"""Local times at clock changes (Europe/Helsinki 2025): skipped in spring, repeated in autumn."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from personas.errors import MappingError
from personas.ingest.batch import ingest
from personas.ingest.clockchange import folds, gaps
from personas.ingest.mapping import load_mapping
from personas.lake import Lake

MAPPING = """
name: shop
sources:
  - name: shop
    files: "*.csv"
    table: transactions
    columns:
      customer_id: customer
      order_id: receipt
      ts: {{column: time, {ts}timezone: Europe/Helsinki{rules}}}
      product_id: product
      unit_price: price
"""

ROWS = """receipt,customer,time,product,price
R1,C1,{a},P1,1.00
R2,C2,{b},P1,2.00
R3,C3,{c},P1,3.00
R4,C4,{d},P1,4.00
"""
DOTTED = dict(
    a="30.03.2025 03:30", b="26.10.2025 03:30", c="01.06.2025 12:00", d="30.03.2025 04:30"
)
ISO = dict(
    a="2025-03-30 03:30:00",
    b="2025-10-26 03:30:00",
    c="2025-10-26T03:30:00+03:00",
    d="2025-03-30 04:30:00",
)


def _run(tmp: Path, rules: str = "", rows: dict = DOTTED) -> tuple:
    ts = 'format: "%d.%m.%Y %H:%M", ' if rows is DOTTED else ""
    (tmp / "m.yaml").write_text(MAPPING.format(ts=ts, rules=rules))
    (tmp / "shop.csv").write_text(ROWS.format(**rows))
    rep = ingest([tmp / "shop.csv"], tmp / "m.yaml", tmp / "lake")
    con = Lake(tmp / "lake").connect()
    got = dict(con.execute("SELECT order_id, ts FROM transactions").fetchall())
    q = con.execute("SELECT source_row, reason FROM quarantine ORDER BY 1").fetchall()
    return rep, {k: v.astimezone(UTC).replace(tzinfo=None) for k, v in got.items()}, q


def utc(s: str) -> datetime:
    return datetime.fromisoformat(s)


def test_the_gaps_and_folds_of_helsinki_2025() -> None:
    def wall(us: int) -> datetime:
        return datetime.fromtimestamp(us / 1e6, UTC).replace(tzinfo=None)

    g = [(wall(a), wall(b)) for a, b, _ in gaps("Europe/Helsinki") if wall(a).year == 2025]
    f = [(wall(a), wall(b)) for a, b, _, _ in folds("Europe/Helsinki") if wall(a).year == 2025]
    assert g == [(utc("2025-03-30 03:00"), utc("2025-03-30 04:00"))]
    assert f == [(utc("2025-10-26 03:00"), utc("2025-10-26 04:00"))]
    assert gaps("UTC") == [] and folds("Asia/Tokyo") == []


@pytest.mark.parametrize("rows", [DOTTED, ISO], ids=["format", "iso"])
def test_defaults_keep_the_old_reading_and_count_the_rows(tmp_path: Path, rows: dict) -> None:
    rep, ts, q = _run(tmp_path, rows=rows)
    assert q == []
    # 03:30 does not exist: read with the winter offset (+2), i.e. as 04:30 summer time
    assert ts["R1"] == utc("2025-03-30 01:30") == ts["R4"]
    # 03:30 occurs twice: the later one (+2)
    assert ts["R2"] == utc("2025-10-26 01:30")
    (src,) = rep.sources
    assert src.flags.get("nonexistent_time") == 1
    assert src.flags.get("ambiguous_time") == 1  # R3 of ISO carries its offset: not local
    assert "flag nonexistent_time" in rep.summary() and "flag ambiguous_time" in rep.summary()
    if rows is ISO:
        assert ts["R3"] == utc("2025-10-26 00:30")


def test_ambiguous_earliest_takes_the_summer_offset(tmp_path: Path) -> None:
    _, ts, q = _run(tmp_path, ", ambiguous: earliest")
    assert ts["R2"] == utc("2025-10-26 00:30") and ts["R1"] == utc("2025-03-30 01:30")
    assert ts["R3"] == utc("2025-06-01 09:00") and q == []


def test_error_quarantines_each_with_the_reason(tmp_path: Path) -> None:
    rep, ts, q = _run(tmp_path, ", nonexistent: error, ambiguous: error")
    assert set(ts) == {"R3", "R4"}
    assert [r for r, _ in q] == [1, 2]
    assert (
        "'30.03.2025 03:30' is not a timestamp matching %d.%m.%Y %H:%M, at a time that "
        "occurs exactly once in Europe/Helsinki (clock changes)" in q[0][1]
    )
    (src,) = rep.sources
    assert src.rules == {"bad_value": 2} and src.accepted + src.quarantined == src.rows_in == 4


def test_only_one_rule_set_to_error(tmp_path: Path) -> None:
    rep, ts, q = _run(tmp_path, ", nonexistent: error")
    assert [r for r, _ in q] == [1]
    assert set(ts) == {"R2", "R3", "R4"} and ts["R2"] == utc("2025-10-26 01:30")
    assert rep.sources[0].flags.get("ambiguous_time") == 1


def test_an_unknown_rule_is_refused_when_the_mapping_loads(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MAPPING.format(ts="", rules=", ambiguous: first"))
    with pytest.raises(MappingError, match="ambiguous"):
        load_mapping(tmp_path / "m.yaml")
