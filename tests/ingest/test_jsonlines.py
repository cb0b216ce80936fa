"""JSON lines are read with the keys of a sample declared, every scalar as text.

What the sample cannot see must still come out right: a value of another type after it is a
``bad_value`` naming its row (not a refused file), a mapped key first seen after it is read,
a broken line after it is named, and an unmapped key it never saw is not read.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from personas.errors import MappingError, SourceError
from personas.ingest.batch import ingest
from personas.ingest.readers import JSON_SAMPLE_ROWS
from personas.lake import Lake

N = JSON_SAMPLE_ROWS + 600  # rows past the sample: 600
FIRST_LATE_KEY = JSON_SAMPLE_ROWS + 100  # 1-based rows
BAD_QTY = JSON_SAMPLE_ROWS + 300

MAPPING = """
name: jl
sources:
  - name: lines
    files: ["*.jsonl.gz"]
    format: jsonl
    table: transactions
    columns:
      customer_id: cust
      order_id: order
      ts: {column: when, format: "%Y-%m-%d %H:%M:%S"}
      product_id: product
      quantity: qty
      unit_price: price
"""


def _rows(late: tuple[str, ...] = ("note",), tail: list[str] | None = None) -> list[str]:
    lines = []
    for i in range(1, N + 1):
        r: dict[str, object] = {
            "cust": f"C{i % 997}",
            "order": f"O{i}",
            "when": f"2024-0{1 + i % 9}-1{i % 10} 10:00:00",
            "product": f"P{i % 13}",
            "qty": "two" if i == BAD_QTY else 1 + i % 3,  # a number until then
            "price": 2.5,
        }
        if i >= FIRST_LATE_KEY:
            r |= {k: f"person{i}@example.com" if k == "email" else 0.5 for k in late}
        lines.append(json.dumps(r))
    return lines + (tail or [])


def _write(tmp_path: Path, lines: list[str], mapped: str = "") -> tuple[Path, Path]:
    (tmp_path / "in").mkdir(parents=True)
    f = tmp_path / "in" / "orders.jsonl.gz"
    f.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1))
    m = tmp_path / "mapping.yaml"
    m.write_text(MAPPING + mapped)
    return f, m


def test_what_the_sample_did_not_see(tmp_path: Path) -> None:
    f, m = _write(tmp_path, _rows())
    report = ingest([f], m, tmp_path / "lake")
    assert report.totals() == {"rows_in": N, "accepted": N - 1, "quarantined": 1, "duplicates": 0}
    con = Lake(tmp_path / "lake").connect()
    q = con.execute('SELECT source, source_row, rule, "column", reason, raw FROM quarantine')
    (name, row, rule, column, reason, raw), *more = q.fetchall()
    assert not more
    assert (name, row, rule, column) == ("orders.jsonl.gz", BAD_QTY, "bad_value", "quantity")
    assert "'two'" in reason
    # a key first seen after the sample and not mapped is not read: not in the quarantine
    assert json.loads(raw) == {
        "cust": f"C{BAD_QTY % 997}",
        "order": f"O{BAD_QTY}",
        "when": f"2024-0{1 + BAD_QTY % 9}-1{BAD_QTY % 10} 10:00:00",
        "product": f"P{BAD_QTY % 13}",
        "qty": "two",
        "price": "2.5",
    }
    threes = sum(1 for i in range(1, N + 1) if i % 3 == 2 and i != BAD_QTY)
    assert con.execute("SELECT count(*) FILTER (quantity = 3) FROM transactions").fetchone() == (
        threes,
    )


def test_a_mapped_key_first_seen_after_the_sample_is_read(tmp_path: Path) -> None:
    f, m = _write(tmp_path, _rows(("disc",)), "      discount: disc\n")
    report = ingest([f], m, tmp_path / "lake")
    assert report.totals()["accepted"] == N - 1
    got = (
        Lake(tmp_path / "lake")
        .connect()
        .execute("SELECT count(discount), min(discount), max(discount) FROM transactions")
    )
    assert got.fetchone() == (N - FIRST_LATE_KEY + 1 - 1, 0.5, 0.5)  # the bad row is out
    # then every key of the file is known, and one that names personal data is refused
    f, m = _write(tmp_path / "b", _rows(("disc", "email")), "      discount: disc\n")
    with pytest.raises(MappingError, match=r"undeclared column.*'email'"):
        ingest([f], m, tmp_path / "b" / "lake")


def test_a_broken_line_after_the_sample_is_named(tmp_path: Path) -> None:
    f, m = _write(tmp_path, _rows(tail=['{"cust": "C1", "order": oops}']))
    with pytest.raises(SourceError, match=rf"orders.jsonl.gz line {N + 1}, column \d+: not valid"):
        ingest([f], m, tmp_path / "lake")
    assert not list((tmp_path / "lake").rglob("*.parquet"))  # nothing written
