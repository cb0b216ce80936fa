"""What counts as a duplicate: whole rows (default), nothing (dedupe: none), or a named key."""

from __future__ import annotations

from pathlib import Path

import pytest

from personas.errors import MappingError
from personas.ingest.batch import ingest
from personas.ingest.mapping import load_mapping
from personas.lake import Lake
from tests.conftest import shared_data

MAPPING = """
name: till
sources:
  - name: till
    files: "*.csv"
    {dedupe}
    table: transactions
    columns:
      customer_id: customer
      order_id: receipt
      ts: time
      product_id: product
      quantity: qty
      unit_price: price
"""

# receipt R1: the same product scanned twice (lines 1 and 2, otherwise identical); line 2 of
# R2 exported twice (a true repeat); one bad price (quarantined).
TILL = """receipt,line,customer,time,product,qty,price
R1,1,C1,2025-03-01 10:00:00,MILK,1,1.20
R1,2,C1,2025-03-01 10:00:00,MILK,1,1.20
R1,3,C1,2025-03-01 10:00:00,BREAD,1,2.50
R2,1,C2,2025-03-01 11:00:00,EGGS,2,3.00
R2,2,C2,2025-03-01 11:00:00,MILK,1,1.20
R2,2,C2,2025-03-01 11:00:00,MILK,1,1.20
R2,3,C2,2025-03-01 11:00:00,SOAP,1,oops
"""


def _ingest(tmp: Path, dedupe: str) -> tuple[dict, float]:
    (tmp / "m.yaml").write_text(MAPPING.format(dedupe=dedupe))
    (tmp / "till.csv").write_text(TILL)
    rep = ingest([tmp / "till.csv"], tmp / "m.yaml", tmp / "lake")
    (src,) = rep.sources
    assert src.rows_in == 7 == src.accepted + src.quarantined + src.duplicates
    con = Lake(tmp / "lake").connect()
    revenue = con.execute("SELECT sum(amount) FROM transactions").fetchone()[0]
    quarantine = con.execute("SELECT rule, reason FROM quarantine ORDER BY 1, 2").fetchall()
    return {"acc": src.accepted, "q": src.quarantined, "dup": src.duplicates, "qr": quarantine}, (
        float(revenue)
    )


def test_default_drops_identical_lines_even_within_one_order(tmp_path: Path) -> None:
    got, revenue = _ingest(tmp_path, "")
    assert (got["acc"], got["q"], got["dup"]) == (4, 1, 2)
    assert revenue == pytest.approx(1.20 + 2.50 + 6.00 + 1.20)


def test_dedupe_none_keeps_every_scan_and_the_revenue(tmp_path: Path) -> None:
    got, revenue = _ingest(tmp_path, "dedupe: none")
    assert (got["acc"], got["q"], got["dup"]) == (6, 1, 0)
    assert revenue == pytest.approx(1.20 * 2 + 2.50 + 6.00 + 1.20 * 2)


def test_dedupe_key_drops_only_true_repeats(tmp_path: Path) -> None:
    got, revenue = _ingest(tmp_path, "dedupe: {key: [order_id, line]}")
    assert (got["acc"], got["q"], got["dup"]) == (5, 1, 1)
    assert revenue == pytest.approx(1.20 * 2 + 2.50 + 6.00 + 1.20)
    (dup,) = [r for r in got["qr"] if r[0] == "duplicate"]
    assert dup[1] == "same dedupe key as till.csv row 5"


def test_dedupe_key_with_canonical_columns_compares_only_those(tmp_path: Path) -> None:
    # a corrected price under the same receipt and product: the later line is the repeat
    till = TILL.replace(
        "R2,2,C2,2025-03-01 11:00:00,MILK,1,1.20\nR2,2",
        "R2,2,C2,2025-03-01 11:00:00,MILK,1,1.10\nR2,2",
    )
    (tmp_path / "m.yaml").write_text(MAPPING.format(dedupe="dedupe: {key: [order_id, product_id]}"))
    (tmp_path / "till.csv").write_text(till)
    (src,) = ingest([tmp_path / "till.csv"], tmp_path / "m.yaml", tmp_path / "lake").sources
    assert (src.accepted, src.quarantined, src.duplicates) == (4, 1, 2)


def test_a_key_column_that_does_not_exist_is_named(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match=r"dedupe: key: 'line_no' is neither .* fix dedupe"):
        _ingest(tmp_path, "dedupe: {key: [order_id, line_no]}")
    (tmp_path / "m.yaml").write_text(MAPPING.format(dedupe="dedupe: rowz"))
    with pytest.raises(MappingError, match="dedupe"):
        load_mapping(tmp_path / "m.yaml")


def test_online_retail_day_with_dedupe_none_keeps_its_repeated_lines(tmp_path: Path) -> None:
    """A real till export: 2010-12-01 has lines repeated within an invoice."""
    day = shared_data("uci-online-retail", "by-day", "2010-12-01.csv.gz")
    base = load_mapping("online_retail")
    none = base.model_copy(
        update={"sources": [s.model_copy(update={"dedupe": "none"}) for s in base.sources]}
    )
    a = ingest([day], base, tmp_path / "a").sources[0]
    b = ingest([day], none, tmp_path / "b").sources[0]
    assert a.duplicates > 0 and b.duplicates == 0
    assert b.rows_in == a.rows_in == b.accepted + b.quarantined
    assert b.accepted == a.accepted + a.duplicates and b.quarantined == a.quarantined

    def revenue(lake: Path) -> float:
        return Lake(lake).connect().execute("SELECT sum(amount) FROM transactions").fetchone()[0]

    assert revenue(tmp_path / "b") > revenue(tmp_path / "a")
