"""Every source format and encoding lands as the same canonical rows.

One small order-line table (with non-ASCII text, a quoted comma, a cancelled line and a bad
number) is written in each format; each ingest must give the same lake rows and accounting.
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from personas.ingest import textfiles
from personas.ingest.batch import ingest
from personas.ingest.mapping import load_mapping
from personas.lake import Lake

ROWS = [
    # customer, order, date, product, description, qty, price
    ("C1", "O1", "2024-01-05 10:00:00", "P1", "Crème brûlée dish", "2", "3.50"),
    ("C1", "O1", "2024-01-05 10:00:00", "P2", "Mug, large", "1", "4.00"),
    ("C2", "O2", "2024-02-10 12:30:00", "P3", "Straße map €", "3", "1.25"),
    ("C2", "XO2", "2024-02-11 09:00:00", "P3", "Straße map €", "1", "1.25"),
    ("", "O3", "2024-03-01 08:00:00", "P1", "Guest line", "1", "3.50"),
    ("C3", "O4", "2024-03-02 08:00:00", "P4", "Bad qty", "two", "2.00"),
]
EXPECTED = {"rows_in": 6, "accepted": 4, "quarantined": 2, "duplicates": 0}
HEADER = ("cust", "order", "date", "product", "description", "qty", "price")

MAPPING = """
name: fmt
sources:
  - name: lines
    files: ["*"]
    {extra}
    table: transactions
    columns:
      customer_id: cust
      order_id: order
      ts: date
      product_id: product
      category: description
      quantity: qty
      unit_price: price
    rules:
      cancellation: {{order_id_prefix: "X"}}
"""


def _mapping(tmp_path: Path, extra: str = "") -> Path:
    p = tmp_path / "mapping.yaml"
    p.write_text(MAPPING.format(extra=extra), encoding="utf-8")
    return p


def _csv_text(sep: str = ",") -> str:
    def cell(v: str) -> str:
        return f'"{v}"' if sep in v or '"' in v else v

    lines = [sep.join(HEADER)] + [sep.join(cell(v) for v in r) for r in ROWS]
    return "\r\n".join(lines) + "\r\n"


def _check(report, lake_dir: Path) -> None:
    assert report.totals() == EXPECTED, report.summary()
    assert report.rules() == {
        "bad_value": 1,
        "cancellation": 1,
        "missing_customer_id": 1,
        "return": 1,
    }
    con = Lake(lake_dir).connect()
    got = con.execute(
        "SELECT customer_id, order_id, ts, product_id, category, quantity, unit_price, amount "
        "FROM transactions ORDER BY source_row"
    ).fetchall()
    assert got == [
        (
            "C1",
            "O1",
            datetime(2024, 1, 5, 10, tzinfo=UTC),
            "P1",
            "Crème brûlée dish",
            2.0,
            3.5,
            7.0,
        ),
        ("C1", "O1", datetime(2024, 1, 5, 10, tzinfo=UTC), "P2", "Mug, large", 1.0, 4.0, 4.0),
        (
            "C2",
            "O2",
            datetime(2024, 2, 10, 12, 30, tzinfo=UTC),
            "P3",
            "Straße map €",
            3.0,
            1.25,
            3.75,
        ),
        (
            "C2",
            "XO2",
            datetime(2024, 2, 11, 9, tzinfo=UTC),
            "P3",
            "Straße map €",
            -1.0,
            1.25,
            -1.25,
        ),
    ]
    q = con.execute(
        'SELECT source_row, rule, "column", reason FROM quarantine ORDER BY source_row'
    ).fetchall()
    assert q[0][:3] == (5, "missing_customer_id", "customer_id")
    assert q[1][:3] == (6, "bad_value", "quantity")
    assert q[1][3] == "quantity (column qty): 'two' is not a number"


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1", "cp1252", "utf-16", "utf-8-sig"])
def test_csv_in_any_encoding(tmp_path: Path, encoding: str) -> None:
    text = _csv_text()
    if encoding == "latin-1":
        text = text.replace("€", "E")  # latin-1 has no euro sign
    f = tmp_path / "orders.csv"
    f.write_bytes(text.encode(encoding))
    report = ingest([f], _mapping(tmp_path, f"encoding: {encoding}"), tmp_path / "lake")
    if encoding == "latin-1":
        assert report.totals() == EXPECTED
        con = Lake(tmp_path / "lake").connect()
        assert (
            con.execute(
                "SELECT category FROM transactions WHERE product_id = 'P3' LIMIT 1"
            ).fetchone()[0]
            == "Straße map E"
        )
        return
    _check(report, tmp_path / "lake")


def test_gzip_csv_and_tsv(tmp_path: Path) -> None:
    f = tmp_path / "orders.csv.gz"
    f.write_bytes(gzip.compress(_csv_text().encode()))
    _check(ingest([f], _mapping(tmp_path), tmp_path / "lake"), tmp_path / "lake")
    t = tmp_path / "tsv" / "orders.tsv.gz"  # tab from the file name, gzip from the content
    t.parent.mkdir()
    t.write_bytes(gzip.compress(_csv_text("\t").encode()))
    _check(ingest([t], _mapping(tmp_path), tmp_path / "lake2"), tmp_path / "lake2")


def test_semicolon_csv_with_decimal_comma(tmp_path: Path) -> None:
    f = tmp_path / "orders.csv"
    f.write_text(
        _csv_text(";")
        .replace("3.50", "3,50")
        .replace("1.25", "1,25")
        .replace("4.00", "4,00")
        .replace("2.00", "2,00"),
        encoding="utf-8",
    )
    report = ingest([f], _mapping(tmp_path, 'delimiter: ";"\n    decimal: ","'), tmp_path / "lake")
    _check(report, tmp_path / "lake")


def test_whitespace_text(tmp_path: Path) -> None:
    f = tmp_path / "orders.txt"
    lines = [" cust  order  date  product  description  qty  price"]
    for c, o, d, p, _desc, q, pr in ROWS:
        lines.append(f"  {c or 'NA'}   {o}  {d.replace(' ', 'T')}  {p}   item  {q}    {pr}")
    f.write_text("\r\n".join(lines) + "\r\n\r\n", encoding="utf-8")
    report = ingest([f], _mapping(tmp_path, "format: text"), tmp_path / "lake")
    assert report.totals() == EXPECTED, report.summary()
    con = Lake(tmp_path / "lake").connect()
    assert con.execute("SELECT sum(amount) FROM transactions").fetchone()[0] == pytest.approx(
        7.0 + 4.0 + 3.75 - 1.25
    )


def test_parquet_with_native_types(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "cust": [r[0] or None for r in ROWS],
            "order": [r[1] for r in ROWS],
            "date": pd.to_datetime([r[2] for r in ROWS]),
            "product": [r[3] for r in ROWS],
            "description": [r[4] for r in ROWS],
            "qty": [2, 1, 3, 1, 1, None],
            "price": [float(r[6]) for r in ROWS],
        }
    )
    f = tmp_path / "orders.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), f)
    report = ingest([f], _mapping(tmp_path), tmp_path / "lake")
    # the typed file cannot hold 'two': that row arrives with an empty quantity instead
    assert report.totals() == EXPECTED
    assert report.rules()["missing_required"] == 1


def test_json_lines_gzip(tmp_path: Path) -> None:
    df = pd.DataFrame(ROWS, columns=list(HEADER))
    f = tmp_path / "orders.jsonl.gz"
    f.write_bytes(
        gzip.compress(df.to_json(orient="records", lines=True, force_ascii=False).encode())
    )
    _check(ingest([f], _mapping(tmp_path), tmp_path / "lake"), tmp_path / "lake")


def test_excel(tmp_path: Path) -> None:
    df = pd.DataFrame(ROWS, columns=list(HEADER)).replace("", None)
    f = tmp_path / "orders.xlsx"
    with pd.ExcelWriter(f) as w:
        pd.DataFrame({"x": [1]}).to_excel(w, sheet_name="Notes", index=False)
        df.to_excel(w, sheet_name="Orders", index=False)
    _check(ingest([f], _mapping(tmp_path, "sheet: Orders"), tmp_path / "lake"), tmp_path / "lake")


def test_r_data(tmp_path: Path) -> None:
    import pyreadr

    df = pd.DataFrame(ROWS, columns=list(HEADER)).replace("", None)
    f = tmp_path / "orders.rda"
    pyreadr.write_rdata(str(f), df, df_name="orders")
    _check(ingest([f], _mapping(tmp_path, "object: orders"), tmp_path / "lake"), tmp_path / "lake")


def test_lookup_adds_columns_and_flags_misses(tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.mkdir()
    (data / "orders.csv").write_text(_csv_text(), encoding="utf-8")
    (data / "products.csv").write_text(
        "product,dept\nP1,kitchen\nP2,kitchen\nP9,books\n", encoding="utf-8"
    )
    extra = (
        "lookups:\n      - {name: products, file: products.csv, key: product, "
        "columns: {dept: department}}"
    )
    mp = (
        _mapping(tmp_path, extra)
        .read_text()
        .replace("category: description", "category: department")
    )
    (tmp_path / "mapping.yaml").write_text(mp)
    report = ingest([data], tmp_path / "mapping.yaml", tmp_path / "lake")
    assert report.ignored == ["products.csv"]  # a lookup is not an input
    assert report.totals() == EXPECTED
    # P3 is not in the lookup (counted among accepted rows only; P4 is on a rejected row)
    assert report.rules()["unmatched_products"] == 2
    con = Lake(tmp_path / "lake").connect()
    assert con.execute(
        "SELECT product_id, category FROM transactions ORDER BY source_row"
    ).fetchall() == [("P1", "kitchen"), ("P2", "kitchen"), ("P3", None), ("P3", None)]


def test_lookup_with_a_repeated_key_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.mkdir()
    (data / "orders.csv").write_text(_csv_text(), encoding="utf-8")
    (data / "products.csv").write_text("product,dept\nP1,a\nP1,b\n", encoding="utf-8")
    extra = "lookups:\n      - {name: products, file: products.csv, key: product, columns: [dept]}"
    with pytest.raises(
        ValueError,
        match=r"lookup 'products': products.csv has 2 rows for "
        r"product = 'P1'; a lookup needs one row per key",
    ):
        ingest([data], _mapping(tmp_path, extra), tmp_path / "lake")


def test_many_small_files_are_read_in_one_scan_with_per_file_rows(tmp_path: Path) -> None:
    data = tmp_path / "days"
    data.mkdir()
    for day in range(1, 13):
        rows = [
            f"C{day},O{day}-{i},2024-01-{day:02d} 10:00:00,P{i},item,{i},1.0"
            for i in range(1, day + 1)
        ]
        (data / f"2024-01-{day:02d}.csv").write_text(
            ",".join(HEADER) + "\n" + "\n".join(rows) + "\n", encoding="utf-8"
        )
    assert len(textfiles.group_key.__doc__ or "") > 0
    report = ingest([data], _mapping(tmp_path), tmp_path / "lake")
    assert report.totals()["accepted"] == sum(range(1, 13))
    con = Lake(tmp_path / "lake").connect()
    # every row's source_row is its row within its own file
    assert (
        con.execute(
            "SELECT count(*) FROM transactions WHERE source_row <> "
            "CAST(split_part(order_id, '-', 2) AS INTEGER)"
        ).fetchone()[0]
        == 0
    )
    assert con.execute("SELECT count(DISTINCT source) FROM transactions").fetchone()[0] == 12


def _big_file(path: Path, n: int, quoted_newline_at: int | None = None) -> None:
    """``n`` order lines; line ``quoted_newline_at`` has a quoted value with a line end."""
    lines = [",".join(HEADER)]
    for i in range(1, n + 1):
        desc = f'"line\nbreak {i}"' if i == quoted_newline_at else f'"item, {i % 7}"'
        lines.append(
            f"C{i % 50},O{i},2024-0{1 + i % 9}-1{i % 10} 10:00:00,P{i % 13},{desc},"
            f"{1 + i % 4},{(i % 17) + 0.5}"
        )
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))


@pytest.mark.parametrize("case", ["plain", "quoted_newline", "cut_inside_quotes"])
def test_large_file_split_into_chunks_matches_one_scan(
    tmp_path: Path, monkeypatch, case: str
) -> None:
    """A big file parsed as concurrent chunks gives exactly the rows of a one-scan read."""
    f = tmp_path / "big.csv.gz"
    quoted = 4321 if case != "plain" else None
    _big_file(f, 20_000, quoted)
    one = ingest([f], _mapping(tmp_path), tmp_path / "one")
    chunk = 64 << 10  # ~20 chunks
    if case == "cut_inside_quotes":  # the first block ends just after the quoted line end
        chunk = gzip.decompress(f.read_bytes()).index(b"line\nbreak") + 6
    monkeypatch.setattr(textfiles, "SPLIT_BYTES", 1)
    monkeypatch.setattr(textfiles, "CHUNK_BYTES", chunk)
    from personas.ingest import stage

    made: list[int] = []

    def counting_split(*a, **k):
        for c in textfiles.split_file(*a, **k):
            made.append(c.index)
            yield c

    serial: list[int] = []
    stage_unit = stage.stage_unit

    def counting_unit(*a, **k):
        serial.append(1)
        return stage_unit(*a, **k)

    monkeypatch.setattr(stage, "split_file", counting_split)
    monkeypatch.setattr(stage, "stage_unit", counting_unit)
    split = ingest([f], _mapping(tmp_path), tmp_path / "split")
    assert len(made) > 1  # the file was cut into chunks
    # ... and read again in one scan only when a cut fell inside a quoted value
    assert serial == ([1] if case == "cut_inside_quotes" else [])
    assert (
        split.totals()
        == one.totals()
        == {"rows_in": 20_000, "accepted": 20_000, "quarantined": 0, "duplicates": 0}
    )
    cols = (
        "customer_id, order_id, ts, product_id, category, quantity, unit_price, amount, source_row"
    )
    a = (
        Lake(tmp_path / "one")
        .connect()
        .execute(f"SELECT {cols} FROM transactions ORDER BY source_row")
        .fetchall()
    )
    b = (
        Lake(tmp_path / "split")
        .connect()
        .execute(f"SELECT {cols} FROM transactions ORDER BY source_row")
        .fetchall()
    )
    assert a == b
    assert [r[-1] for r in b] == list(range(1, 20_001))
    assert all(r[1] == f"O{r[-1]}" for r in b)  # row numbers follow the file
    if quoted:
        assert b[quoted - 1][4] == f"line\nbreak {quoted}"
    files = Lake(tmp_path / "split").files("transactions")
    assert 9 <= len(files) <= 18  # one file per month and writer thread, not per piece
    assert not list((tmp_path / "split").rglob("*.chunk"))


def test_read_mes_and_checksums_in_a_folder_are_ignored(tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.mkdir()
    (data / "orders.csv").write_text(_csv_text(), encoding="utf-8")
    (data / "SOURCE.md").write_text("# about\n")
    (data / "SHA256SUMS").write_text("abc  orders.csv\n")
    m = load_mapping(_mapping(tmp_path).as_posix())
    report = ingest([data], m, tmp_path / "lake")
    assert sorted(report.ignored) == ["SHA256SUMS", "SOURCE.md"]
    assert report.totals() == EXPECTED


def test_rows_are_split_by_month_in_row_order_with_stray_months() -> None:
    """Months with a large share are filtered, the few stray rows gathered: same result."""
    from personas.ingest.write import _by_month

    rng = np.random.default_rng(7)
    part = np.full(4000, 202402)
    part[:1500] = 202401
    stray = rng.choice(4000, 60, replace=False)
    part[stray] = rng.choice([202312, 202305, 202403], 60)
    keep = rng.random(4000) > 0.05
    rows = np.arange(4000)
    batch = pa.Table.from_batches(  # several chunks, as the stage pieces are read
        [
            pa.record_batch({"_row": rows[i : i + 700], "_part": part[i : i + 700]})
            for i in range(0, 4000, 700)
        ]
    )
    got = _by_month(part, keep, batch)
    assert [m for m, _ in got] == sorted({int(p) for p in part[keep]})
    for month, t in got:
        expected = rows[keep & (part == month)]
        assert t["_row"].to_pylist() == expected.tolist()


def test_rows_in_time_order_are_cut_into_runs_of_one_month() -> None:
    """An export in time order (one late line in it): each month's rows, still in row order."""
    from personas.ingest.write import _by_month

    part = np.repeat([202401, 202402, 202403, 202404], 1000)
    part[2500] = 202401  # a late line
    keep = np.random.default_rng(5).random(4000) > 0.05
    rows = np.arange(4000)
    batch = pa.Table.from_batches(
        [pa.record_batch({"_row": rows[i : i + 700]}) for i in range(0, 4000, 700)]
    )
    got = _by_month(part, keep, batch)
    assert [m for m, _ in got] == [202401, 202401, 202402, 202403, 202403, 202404]
    for month in (202401, 202402, 202403, 202404):
        joined = [r for m, t in got if m == month for r in t["_row"].to_pylist()]
        assert joined == rows[keep & (part == month)].tolist()


def test_months_of_kept_rows_match_the_calendar() -> None:
    """Bisection among month starts gives each kept row its UTC year * 100 + month."""
    from personas.ingest.write import _months

    rng = np.random.default_rng(3)
    us = rng.integers(
        np.datetime64("2023-01-30T00:00:00", "us").astype(np.int64),
        np.datetime64("2023-03-01T00:00:01", "us").astype(np.int64),
        5000,
    )
    us[:40] = np.datetime64("1999-12-31T23:59:59.999999", "us").astype(np.int64)  # stray rows
    us[40:45] = np.datetime64("2023-03-01T00:00:00", "us").astype(np.int64)  # a month's start
    keep = rng.random(5000) > 0.1
    keep[:45] = True
    ts = pa.chunked_array(
        [
            pa.array(us[:2500], pa.timestamp("us", tz="UTC")),
            pa.array(us[2500:], pa.timestamp("us", tz="UTC")),
        ]
    )
    months = us.astype("datetime64[us]").astype("datetime64[M]")
    expected = (months.astype("datetime64[Y]").astype(int) + 1970) * 100 + (
        months.astype(int) % 12 + 1
    )
    got = _months(ts, keep)
    assert (got[keep] == expected[keep]).all()
    assert set(got[keep]) == {199912, 202301, 202302, 202303}


@pytest.mark.parametrize("room", ["all", "part", "none"])
def test_duplicates_found_alike_when_the_hash_room_runs_out(
    tmp_path: Path, monkeypatch, room: str
) -> None:
    """Chunks past the in-memory hash budget send the duplicate search to DuckDB: same lake."""
    from personas.ingest import dedupe, stage

    f = tmp_path / "big.csv.gz"
    _big_file(f, 20_000)
    text = gzip.decompress(f.read_bytes()).decode().splitlines(keepends=True)
    f.write_bytes(gzip.compress("".join(text + text[1:501] + text[15_001:15_301]).encode()))
    monkeypatch.setattr(textfiles, "SPLIT_BYTES", 1)
    monkeypatch.setattr(textfiles, "CHUNK_BYTES", 64 << 10)  # ~20 chunks
    limit = {"all": 10**9, "part": 8_000, "none": 0}[room]
    monkeypatch.setattr(stage, "HASH_SORT_MAX_ROWS", limit)
    in_duckdb: list[str] = []
    sql_path = dedupe._repeated_hashes_sql

    def spy(con, ctx, table, lake_hashes):
        in_duckdb.append(table)
        return sql_path(con, ctx, table, lake_hashes)

    monkeypatch.setattr(dedupe, "_repeated_hashes_sql", spy)
    report = ingest([f], _mapping(tmp_path), tmp_path / "lake")
    assert report.totals() == {
        "rows_in": 20_800,
        "accepted": 20_000,
        "quarantined": 0,
        "duplicates": 800,
    }
    assert in_duckdb == ([] if room == "all" else ["transactions"])
    con = Lake(tmp_path / "lake").connect()
    assert con.execute(
        "SELECT count(DISTINCT order_id), max(source_row) FROM transactions"
    ).fetchone() == (20_000, 20_000)


def test_excel_whose_first_sheet_is_not_the_data_names_the_sheet(tmp_path: Path) -> None:
    from personas.errors import SourceError

    df = pd.DataFrame(ROWS, columns=list(HEADER)).replace("", None)
    f = tmp_path / "orders.xlsx"
    with pd.ExcelWriter(f) as w:
        pd.DataFrame({"x": [1]}).to_excel(w, sheet_name="Notes", index=False)
        df.to_excel(w, sheet_name="Orders", index=False)
    with pytest.raises(
        SourceError,
        match=r"orders.xlsx: the first sheet 'Notes' lacks the mapped column\(s\) "
        r".*sheet 'Orders' has them: set sheet: 'Orders' in source",
    ):
        ingest([f], _mapping(tmp_path), tmp_path / "lake")
    assert not (tmp_path / "lake" / "_manifest").exists() or not any(
        (tmp_path / "lake" / "_manifest").iterdir()
    )
