"""Bad input: each gets an error naming the file, line (or row), column and the fix.

And property tests over generated CSVs: whatever the mix of good and bad rows, input rows equal
accepted + quarantined + duplicates, and every quarantined row carries its rule and source row.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personas.errors import MappingError, SchemaError, SourceError
from personas.ingest import textfiles
from personas.ingest.batch import ingest
from personas.lake import STAGING_DIR, Lake

HEADER = ["customer", "order", "date", "product", "description", "qty", "price"]
MAPPING = """
name: bad
sources:
  - name: orders
    files: ["*.csv", "*.csv.gz"]
    {extra}
    table: transactions
    columns:
      customer_id: customer
      order_id: order
      ts: date
      product_id: product
      category: description
      quantity: qty
      unit_price: price
"""


def _mapping(tmp: Path, extra: str = "") -> Path:
    p = tmp / "mapping.yaml"
    p.write_text(MAPPING.format(extra=extra))
    return p


def _rows(n: int = 20) -> list[list[str]]:
    return [
        [
            f"C{i % 5}",
            f"O{i}",
            f"2024-01-{1 + i % 28:02d} 10:00:00",
            f"P{i % 7}",
            f"item {i}",
            str(1 + i % 3),
            f"{1 + i % 9}.50",
        ]
        for i in range(1, n + 1)
    ]


def _write(
    path: Path,
    rows: list[list[str]],
    header: list[str] = HEADER,
    sep: str = ",",
    encoding: str = "utf-8",
) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=sep, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    data = buf.getvalue().encode(encoding)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def _refused(
    tmp: Path, files: list[Path], exc: type[Exception], match: str, extra: str = ""
) -> str:
    lake = tmp / "lake"
    with pytest.raises(exc, match=match) as e:
        ingest(files, _mapping(tmp, extra), lake)
    # no partial writes: nothing committed, nothing left behind
    assert Lake(lake).batches() == []
    assert not (lake / STAGING_DIR).exists() or not any((lake / STAGING_DIR).iterdir())
    assert not list(lake.rglob("*.parquet"))
    return str(e.value)


def test_truncated_gzip(tmp_path: Path) -> None:
    f = _write(tmp_path / "orders.csv.gz", _rows(5000))
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    msg = _refused(
        tmp_path,
        [f],
        SourceError,
        r"orders.csv.gz: the compressed file is truncated or corrupt after line "
        r"[\d,]+ \(EOFError: .*\)\. Re-download or re-export it; nothing was "
        r"ingested from it\.",
    )
    assert "line 0 " not in msg


def test_truncated_gzip_large_file_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(textfiles, "SPLIT_BYTES", 1)
    monkeypatch.setattr(textfiles, "CHUNK_BYTES", 16 << 10)
    f = _write(tmp_path / "orders.csv.gz", _rows(5000))
    f.write_bytes(f.read_bytes()[: f.stat().st_size * 2 // 3])
    _refused(
        tmp_path,
        [f],
        SourceError,
        r"orders.csv.gz: the compressed file is truncated or "
        r"corrupt after line [\d,]+",
    )


def test_not_gzip_at_all(tmp_path: Path) -> None:
    f = tmp_path / "orders.csv.gz"
    f.write_bytes(b"\x1f\x8b\x08\x00garbage-not-deflate" * 10)
    _refused(
        tmp_path,
        [f],
        SourceError,
        r"orders.csv.gz: the compressed file is corrupt at its "
        r"start .*Re-download or re-export it",
    )


def test_wrong_delimiter(tmp_path: Path) -> None:
    f = _write(tmp_path / "orders.csv", _rows(), sep=";")
    _refused(
        tmp_path,
        [f],
        SchemaError,
        r"orders.csv: column 'customer' \(mapped to customer_id\) is not in the file; it "
        r"has 1 column\(s\): 'customer;order;date;product;description;qty;price'\. The "
        r"header looks ';'-delimited: set delimiter: ';' in source 'orders'",
    )


def test_missing_required_column(tmp_path: Path) -> None:
    header = [h if h != "price" else "Price" for h in HEADER]
    f = _write(tmp_path / "orders.csv", _rows(), header=header)
    _refused(
        tmp_path,
        [f],
        SchemaError,
        r"orders.csv: column 'price' \(mapped to unit_price\) is not in the file; it has 7 "
        r"column\(s\): .*'Price'\. Did you mean 'Price'\? Names are case-sensitive: write "
        r"unit_price: Price under columns: in source 'orders'",
    )


def test_mostly_unparsable_dates_are_refused_with_the_format_to_use(tmp_path: Path) -> None:
    rows = _rows()
    for r in rows:
        r[2] = f"{r[2][8:10]}/{r[2][5:7]}/2024 {r[2][11:16]}"  # 05/01/2024 10:00
    f = _write(tmp_path / "orders.csv", rows)
    _refused(
        tmp_path,
        [f],
        SchemaError,
        r"orders.csv row 1, ts \(column date\): '02/01/2024 10:00' is not an ISO "
        r"timestamp \(set format: for other layouts\)\. 20 of 20 rows \(100%\) fail, over "
        r"max_bad_fraction 50%, so the file is refused\. The values look like "
        r"'%d/%m/%Y %H:%M' \(20 of 20 sampled parse\): set format: \"%d/%m/%Y %H:%M\" "
        r"under columns: ts: in source 'orders' \(check whether day or month comes first\)",
    )


def test_a_few_bad_dates_and_numbers_are_quarantined_with_reasons(tmp_path: Path) -> None:
    rows = _rows()
    rows[3][2] = "2024-02-30 10:00:00"
    rows[7][5] = "three"
    rows[9][6] = "12,5"
    rows[11][2] = "1899-01-01 00:00:00"
    f = _write(tmp_path / "orders.csv", rows)
    r = ingest([f], _mapping(tmp_path), tmp_path / "lake")
    assert r.totals() == {"rows_in": 20, "accepted": 16, "quarantined": 4, "duplicates": 0}
    q = (
        Lake(tmp_path / "lake")
        .connect()
        .execute(
            'SELECT source, source_row, rule, "column", reason FROM quarantine ORDER BY source_row'
        )
        .fetchall()
    )
    assert q == [
        (
            "orders.csv",
            4,
            "bad_value",
            "ts",
            "ts (column date): '2024-02-30 10:00:00' is not an ISO timestamp (set format: for "
            "other layouts)",
        ),
        (
            "orders.csv",
            8,
            "bad_value",
            "quantity",
            "quantity (column qty): 'three' is not a number",
        ),
        (
            "orders.csv",
            10,
            "bad_value",
            "unit_price",
            "unit_price (column price): '12,5' is not a number",
        ),
        (
            "orders.csv",
            12,
            "impossible_date",
            "ts",
            "ts 1899-01-01 00:00 UTC is outside the plausible range 1990-01-01 .. " + q[3][4][-10:],
        ),
    ]


def test_wrong_types_mostly_are_refused_with_a_hint(tmp_path: Path) -> None:
    rows = _rows()
    for r in rows:
        r[6] = r[6].replace(".", ",")
    f = _write(tmp_path / "orders.csv", rows, sep=";")
    _refused(
        tmp_path,
        [f],
        SchemaError,
        r"orders.csv row 1, unit_price \(column price\): '2,50' is not a number\. 20 of 20 "
        r"rows \(100%\) fail.*The values use a decimal comma: set decimal: \",\" in source "
        r"'orders'",
        extra='delimiter: ";"',
    )
    r = ingest([f], _mapping(tmp_path, 'delimiter: ";"\n    decimal: ","'), tmp_path / "ok")
    assert r.totals()["accepted"] == 20


def test_empty_file(tmp_path: Path) -> None:
    f = tmp_path / "orders.csv"
    f.write_bytes(b"")
    _refused(
        tmp_path,
        [f],
        SourceError,
        r"orders.csv: the file is empty \(0 bytes\); remove it from the input or "
        r"re-export it",
    )


def test_header_only_file(tmp_path: Path) -> None:
    f = _write(tmp_path / "orders.csv", [])
    _refused(
        tmp_path,
        [f],
        SourceError,
        r"orders.csv: no data rows \(a header only, or nothing after the header\)\. If an "
        r"empty export is normal for this feed, set allow_empty: true in source 'orders'\.",
    )
    r = ingest([f], _mapping(tmp_path, "allow_empty: true"), tmp_path / "ok")
    assert r.totals() == {"rows_in": 0, "accepted": 0, "quarantined": 0, "duplicates": 0}
    assert r.batch_id  # recorded, so the empty export is not offered again


def test_a_10_mb_line(tmp_path: Path) -> None:
    rows = _rows()
    rows[1][4] = "x" * (10 << 20)
    f = _write(tmp_path / "orders.csv", rows)
    _refused(
        tmp_path,
        [f],
        SourceError,
        r"orders.csv line 3: the line is 10,485,\d\d\d bytes long, over the limit of "
        r"1,000,000 \(max_line_bytes\); column 'description' holds 10,485,760 bytes\. If "
        r"the value is real, raise max_line_bytes: in source 'orders'; otherwise look for "
        r"an unclosed quote before this line\.",
    )
    r = ingest([f], _mapping(tmp_path, "max_line_bytes: 20000000"), tmp_path / "ok")
    assert r.totals()["accepted"] == 20


def test_mixed_encodings(tmp_path: Path) -> None:
    rows = _rows()
    f = _write(tmp_path / "orders.csv", rows)
    data = f.read_bytes().replace(b"item 2,", "item 2 caf\u00e9,".encode("latin-1"))
    data = data.replace(b"item 5,", "item 5 caf\u00e9,".encode("utf-8"))
    f.write_bytes(data)
    _refused(
        tmp_path,
        [f],
        SourceError,
        r"orders.csv line 3, column 'description': bytes b'\\xe9' \(in b'.*'\) are not "
        r"valid utf-8\. The file mixes encodings or is not utf-8: set encoding: \(e\.g\. "
        r"latin-1 or cp1252\) in source 'orders', or re-export the file as UTF-8\.",
    )


def test_ragged_line(tmp_path: Path) -> None:
    f = _write(tmp_path / "orders.csv", _rows())
    lines = f.read_text().splitlines()
    lines[4] += ",extra,fields"
    f.write_text("\n".join(lines) + "\n")
    _refused(
        tmp_path,
        [f],
        SourceError,
        r"orders.csv line 5: 9 fields where the header has 7; check delimiter: ',' and "
        r"quote: in source 'orders', or fix that line",
    )


def test_bad_file_among_many_small_ones_is_named(tmp_path: Path) -> None:
    files = [_write(tmp_path / f"day{i}.csv", _rows()) for i in range(5)]
    lines = files[3].read_text().splitlines()
    lines[10] += ",oops"
    files[3].write_text("\n".join(lines) + "\n")
    _refused(tmp_path, files, SourceError, r"day3.csv line 11: 8 fields where the header has 7")


def test_unmatched_file_and_undeclared_personal_data(tmp_path: Path) -> None:
    other = tmp_path / "in"
    other.mkdir()
    _write(other / "orders.csv", _rows())
    (other / "notes.xlsx").write_bytes(b"x")
    _refused(
        tmp_path,
        [other],
        MappingError,
        r"notes.xlsx: no source in mapping 'bad' matches this file \(patterns: orders: "
        r"\['\*.csv', '\*.csv.gz'\]\); add its name pattern to a source's files:, or to "
        r"ignore: if it is not data",
    )
    f = _write(tmp_path / "orders.csv", [[*r, "a@b.c"] for r in _rows()], header=[*HEADER, "email"])
    _refused(
        tmp_path,
        [f],
        MappingError,
        r"orders.csv: personal data in undeclared column\(s\) 'email' \(its name suggests an "
        r"e-mail address\); declare each under personal_data: in source 'orders' as drop or "
        r"hash \(or, if it is not personal, list it under not_personal:\)",
    )


# ---- property tests ----------------------------------------------------------------------
KINDS = (
    "good",
    "good",
    "good",
    "dup",
    "missing_id",
    "bad_number",
    "bad_date",
    "zero_price",
    "quoted",
)


@st.composite
def order_files(draw) -> tuple[list[list[str]], list[str]]:
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=60))
    seed = draw(st.integers(0, 2**16))
    rng = random.Random(seed)
    rows: list[list[str]] = []
    expected: list[str] = []
    good: list[list[str]] = []
    for k in kinds:
        i = len(rows) + 1
        row = [
            f"C{rng.randint(1, 4)}",
            f"O{rng.randint(1, 6)}",
            f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)} 0{rng.randint(0, 9)}:00:00",
            f"P{rng.randint(1, 3)}",
            rng.choice(["mug", "bag"]),
            str(rng.randint(1, 3)),
            rng.choice(["1.5", "2", "10.25"]),
        ]
        if k == "dup" and good:
            row = list(rng.choice(good))
        elif k == "missing_id":
            row[0] = rng.choice(["", "  "])
        elif k == "bad_number":
            row[rng.choice([5, 6])] = rng.choice(["abc", "1,5", "--1", "1e"])
        elif k == "bad_date":
            row[2] = rng.choice(["2024-13-01 00:00:00", "yesterday", "2024-02-30"])
        elif k == "zero_price":
            row[6] = rng.choice(["0", "0.00", " 0 "])
        elif k == "quoted":
            row[4] = rng.choice(['mug, "large"', "bag\nwith newline", 'a,b,"c"'])
        rule = {
            "missing_id": "missing_customer_id",
            "bad_number": "bad_value",
            "bad_date": "bad_value",
            "zero_price": "zero_price",
        }.get(k, "ok")
        if rule == "ok":
            good.append(row)
        rows.append(row)
        expected.append(rule)
        del i
    return rows, expected


def _oracle(rows: list[list[str]], expected: list[str]) -> list[str]:
    """Expected verdict per row, duplicates included (first occurrence of a good row kept)."""
    seen: set[tuple] = set()
    out = []
    for row, rule in zip(rows, expected, strict=True):
        if rule == "ok":
            key = (row[0], row[1], row[2], row[3], row[4], float(row[5]), float(row[6]))
            out.append("duplicate" if key in seen else "ok")
            seen.add(key)
        else:
            out.append(rule)
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order_files(), st.lists(st.integers(0, 60), max_size=2), st.booleans())
def test_accounting_always_balances(case, cuts: list[int], gz: bool) -> None:
    """Rows spread over 1-3 files (read in one scan): every row is accounted for, exactly."""
    rows, expected = case
    verdicts = _oracle(rows, expected)
    bounds = [0, *sorted(min(c, len(rows)) for c in cuts), len(rows)]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        files, where = [], []
        for k, (a, b) in enumerate(itertools.pairwise(bounds)):
            name = f"part{k}.csv" + (".gz" if gz and k % 2 == 0 else "")
            files.append(_write(tmp / name, rows[a:b]))
            where += [(name, i) for i in range(1, b - a + 1)]
        r = ingest(
            files, _mapping(tmp, "max_bad_fraction: 1.0\n    allow_empty: true"), tmp / "lake"
        )
        t = r.totals()
        assert t["rows_in"] == len(rows)
        assert t["rows_in"] == t["accepted"] + t["quarantined"] + t["duplicates"]
        assert all(s.balanced() for s in r.sources)
        assert t["accepted"] == verdicts.count("ok")
        assert t["duplicates"] == verdicts.count("duplicate")
        assert t["quarantined"] == len(rows) - t["accepted"] - t["duplicates"]
        con = Lake(tmp / "lake").connect()
        q = con.execute("SELECT source, source_row, rule, reason FROM quarantine").fetchall()
        assert sorted((src, row, rule) for src, row, rule, _ in q) == sorted(
            (*where[i], v) for i, v in enumerate(verdicts) if v != "ok"
        )
        assert all(reason for *_, reason in q)
        kept = con.execute("SELECT source, source_row FROM transactions").fetchall()
        assert sorted(kept) == sorted(where[i] for i, v in enumerate(verdicts) if v == "ok")
