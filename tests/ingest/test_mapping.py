"""Mapping validation: every message names the YAML key to change and, where it can, the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from personas.errors import MappingError
from personas.ingest.mapping import load_mapping, shipped_mappings


def _load(tmp_path: Path, text: str):
    p = tmp_path / "m.yaml"
    p.write_text(text, encoding="utf-8")
    return load_mapping(p)


GOOD_SOURCE = """
  - name: orders
    files: "*.csv"
    table: transactions
    columns:
      customer_id: cust
      order_id: order
      ts: date
      quantity: qty
      unit_price: price
"""


def test_shipped_mappings_load() -> None:
    names = shipped_mappings()
    assert {"online_retail", "cdnow", "dunnhumby", "hillstrom"} <= set(names)
    for name in names:
        m = load_mapping(name)
        assert m.name == name and m.sources


def test_unknown_key_gets_did_you_mean_at_its_path(tmp_path: Path) -> None:
    text = "name: t\nsources:" + GOOD_SOURCE.replace('files: "*.csv"', 'fles: "*.csv"')
    with pytest.raises(MappingError) as e:
        _load(tmp_path, text)
    msg = str(e.value)
    assert "sources[0] 'orders' > fles: unknown key 'fles'; did you mean 'files'?" in msg
    assert str(tmp_path / "m.yaml") in msg


def test_unknown_key_inside_a_column_spec(tmp_path: Path) -> None:
    text = "name: t\nsources:" + GOOD_SOURCE.replace(
        "ts: date", 'ts: {column: date, fromat: "%Y%m%d"}'
    )
    with pytest.raises(
        MappingError,
        match=r"sources\[0\] 'orders' > columns > ts > fromat: "
        r"unknown key 'fromat'; did you mean 'format'\?",
    ):
        _load(tmp_path, text)


def test_unknown_top_level_key(tmp_path: Path) -> None:
    with pytest.raises(
        MappingError,
        match=r"sorces: unknown key 'sorces'; did you mean "
        r"'sources'\?",
    ):
        _load(tmp_path, "name: t\nsorces: []\nsources:" + GOOD_SOURCE)


def test_unknown_canonical_column_gets_did_you_mean(tmp_path: Path) -> None:
    text = "name: t\nsources:" + GOOD_SOURCE.replace("quantity: qty", "quantiy: qty")
    with pytest.raises(MappingError) as e:
        _load(tmp_path, text)
    msg = str(e.value)
    assert (
        "'quantiy' is not a column of the canonical transactions table; did you mean "
        "'quantity'?" in msg
    )
    assert "sources[0] 'orders'" in msg


def test_missing_required_canonical_column(tmp_path: Path) -> None:
    text = "name: t\nsources:" + GOOD_SOURCE.replace("      ts: date\n", "")
    with pytest.raises(MappingError) as e:
        _load(tmp_path, text)
    msg = str(e.value)
    assert "sources[0] 'orders': columns: must map the required transactions column(s) ts" in msg
    assert "add e.g. `ts: <source column>` under columns:" in msg


def test_amount_or_unit_price_is_required(tmp_path: Path) -> None:
    text = "name: t\nsources:" + GOOD_SOURCE.replace("      unit_price: price\n", "")
    with pytest.raises(MappingError, match=r"amount \(or unit_price, to derive amount"):
        _load(tmp_path, text)


@pytest.mark.parametrize(
    ("given", "suggested"), [("xlsx", "excel"), ("json", "jsonl"), ("csvv", "csv"), ("txt", "text")]
)
def test_bad_format_name(tmp_path: Path, given: str, suggested: str) -> None:
    text = "name: t\nsources:" + GOOD_SOURCE.replace(
        'files: "*.csv"', f'files: "*.csv"\n    format: {given}'
    )
    with pytest.raises(MappingError) as e:
        _load(tmp_path, text)
    msg = str(e.value)
    assert (
        f"sources[0] 'orders' > format: '{given}' is not a format we read; use one of csv, "
        f"tsv, text, parquet, jsonl, excel, rda, sql (did you mean '{suggested}'?)" in msg
    )


def test_yaml_boolean_key_is_explained(tmp_path: Path) -> None:
    text = "name: t\nsources:" + GOOD_SOURCE + "    lookups:\n      - name: p\n        on: x\n"
    with pytest.raises(MappingError, match=r"key True is not text \(YAML reads on, off, yes, no"):
        _load(tmp_path, text)


def test_column_spec_needs_exactly_one_origin(tmp_path: Path) -> None:
    text = "name: t\nsources:" + GOOD_SOURCE.replace(
        "quantity: qty", "quantity: {column: qty, value: 1}"
    )
    with pytest.raises(
        MappingError,
        match=r"columns > quantity: give exactly one of column:, "
        r"value: or expr: \(got column, value\)",
    ):
        _load(tmp_path, text)


def test_sql_source_needs_url_and_query(tmp_path: Path) -> None:
    text = "name: t\nsources:" + GOOD_SOURCE.replace('files: "*.csv"', "format: sql")
    with pytest.raises(
        MappingError,
        match=r"a sql source needs url: \(SQLAlchemy URL\) and "
        r"query:",
    ):
        _load(tmp_path, text)


def test_missing_mapping_file_lists_shipped_ones(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match=r"not found; shipped mappings: .*online_retail"):
        load_mapping(tmp_path / "nope.yaml")


def test_url_placeholders_come_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    text = (
        "name: t\nsources:\n  - name: db\n    format: sql\n"
        "    url: postgresql+psycopg://u:${PG_SECRET_X}@h/db\n    query: SELECT 1\n"
        "    table: customers\n    columns: {customer_id: id}\n"
    )
    m = _load(tmp_path, text)
    with pytest.raises(MappingError, match="url needs environment variable PG_SECRET_X"):
        m.sources[0].resolved_url()
    monkeypatch.setenv("PG_SECRET_X", "s3cret")
    assert m.sources[0].resolved_url() == "postgresql+psycopg://u:s3cret@h/db"


def test_a_misspelt_time_zone_is_caught_when_the_mapping_loads(tmp_path: Path) -> None:
    """It used to surface only when a file was read ("Unknown TimeZone 'Europe/Helsinky'")."""
    text = "name: t\nsources:" + GOOD_SOURCE.replace(
        "ts: date", "ts: {column: date, timezone: Europe/Helsinky}"
    )
    with pytest.raises(
        MappingError,
        match=r"sources\[0\] 'orders' > columns > ts > timezone: unknown time zone "
        r"'Europe/Helsinky'; did you mean 'Europe/Helsinki'\?",
    ):
        _load(tmp_path, text)
    ok = "name: t\nsources:" + GOOD_SOURCE.replace(
        "ts: date", "ts: {column: date, timezone: Europe/Helsinki}"
    )
    assert _load(tmp_path, ok).sources[0].name == "orders"
