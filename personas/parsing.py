"""SQL that turns one source value into one typed canonical value, and says why it could not.

Each canonical column gets two expressions: the typed value, and (when parsing can fail) the
source text, so a row whose text is present but whose value is NULL is quarantined as
``bad_value`` with the offending text in the reason. Nothing fails silently into a NULL.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from personas.errors import SchemaError
from personas.mapping import ColumnSpec, Source

ID_FIELDS = {"customer_id", "order_id", "product_id", "session_id"}
NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
           "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "REAL")
COMMON_TS_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y%m%d",
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M",
    "%m/%d/%Y", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d-%m-%Y %H:%M",
    "%Y/%m/%d %H:%M:%S", "%Y/%m/%d",
)


@dataclass
class FieldSQL:
    """SQL for one canonical column."""

    value: str
    source: str | None
    column: str | None
    expects: str


def field_sql(name: str, spec: ColumnSpec, target: str, raw: object, source: Source,
              key: str) -> FieldSQL:
    """Typed SQL for canonical column ``name`` of DuckDB type ``target``."""
    columns: dict[str, str] = raw.columns  # type: ignore[attr-defined]
    raw_name: str = raw.name  # type: ignore[attr-defined]
    if spec.column is not None:
        if spec.column not in columns:
            raise SchemaError(_missing_column(raw_name, spec.column, name, columns, source))
        v, vtype = _id(spec.column), columns[spec.column]
    elif spec.expr is not None:
        v, vtype = f"CAST(({spec.expr}) AS VARCHAR)", "VARCHAR"
    else:
        v, vtype = _literal(spec.value)
    if spec.values:
        cases = " ".join(f"WHEN '{_q(k)}' THEN {_literal(val)[0]}" for k, val in
                         spec.values.items())
        v, vtype = f"CAST(CASE CAST({v} AS VARCHAR) {cases} ELSE CAST({v} AS VARCHAR) END AS " \
                   "VARCHAR)", "VARCHAR"
    text = f"NULLIF(trim(CAST({v} AS VARCHAR)), '')"
    if target == "VARCHAR":
        value = _varchar(v, vtype, name)
        if spec.pseudonymise:
            value = f"sha256('{_q(key)}' || {value})"
        return FieldSQL(value, None, spec.column, "text")
    if target == "DOUBLE":
        return FieldSQL(_double(v, vtype, source), text, spec.column, "a number")
    if target == "BOOLEAN":
        return FieldSQL(_boolean(v, vtype), text, spec.column, "true/false (or yes/no, 1/0)")
    if target == "BIGINT":
        return FieldSQL(f"TRY_CAST({_double(v, vtype, source)} AS BIGINT)", text, spec.column,
                        "a whole number")
    if target == "TIMESTAMPTZ":
        fmts = spec.formats()
        expects = ("a timestamp matching " + " or ".join(fmts)) if fmts else \
            "an ISO timestamp (set format: for other layouts)"
        return FieldSQL(_timestamp(v, vtype, fmts, spec.timezone or "UTC"), text, spec.column,
                        expects)
    raise AssertionError(target)  # pragma: no cover


def _varchar(v: str, vtype: str, name: str) -> str:
    if vtype.upper() in NUMERIC:
        if name in ID_FIELDS:
            return (f"CASE WHEN {v} = trunc({v}) THEN CAST(CAST({v} AS BIGINT) AS VARCHAR) "
                    f"ELSE CAST({v} AS VARCHAR) END")
        return f"CAST({v} AS VARCHAR)"
    if vtype.upper().startswith(("STRUCT", "MAP", "JSON")) or vtype.endswith("[]"):
        return f"CAST(to_json({v}) AS VARCHAR)"
    s = f"NULLIF(trim(CAST({v} AS VARCHAR)), '')"
    if name in ID_FIELDS:
        # ids exported through a float column ("17850.0") are the integer id
        return f"regexp_replace({s}, '^(-?[0-9]+)\\.0+$', '\\1')"
    return s


def _double(v: str, vtype: str, source: Source) -> str:
    if vtype.upper() in NUMERIC:
        return f"CAST({v} AS DOUBLE)"
    if vtype.upper() == "BOOLEAN":
        return f"CAST(CAST({v} AS INTEGER) AS DOUBLE)"
    s = f"trim(CAST({v} AS VARCHAR))"
    if source.thousands:
        s = f"replace({s}, '{_q(source.thousands)}', '')"
    if source.decimal != ".":
        s = f"replace({s}, '{_q(source.decimal)}', '.')"
    return f"TRY_CAST({s} AS DOUBLE)"


def _boolean(v: str, vtype: str) -> str:
    if vtype.upper() == "BOOLEAN":
        return v
    if vtype.upper() in NUMERIC:
        return f"({v} <> 0)"
    s = f"lower(trim(CAST({v} AS VARCHAR)))"
    return (f"CASE WHEN {s} IN ('true', 't', 'yes', 'y', '1') THEN true "
            f"WHEN {s} IN ('false', 'f', 'no', 'n', '0') THEN false END")


def _timestamp(v: str, vtype: str, fmts: list[str], tz: str) -> str:
    t = vtype.upper()
    tzq = _q(tz)
    if t in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        return v
    if t.startswith("TIMESTAMP") or t == "DATE":
        return f"timezone('{tzq}', CAST({v} AS TIMESTAMP))"
    s = f"trim(CAST({v} AS VARCHAR))"
    if fmts:
        parsed = ", ".join(f"try_strptime({s}, '{_q(f)}')" for f in fmts)
        naive = f"coalesce({parsed})" if len(fmts) > 1 else parsed
        return f"timezone('{tzq}', {naive})"
    return (f"CASE WHEN regexp_matches({s}, '([+-][0-9]{{2}}(:?[0-9]{{2}})?|Z)$') "
            f"THEN TRY_CAST({s} AS TIMESTAMPTZ) "
            f"ELSE timezone('{tzq}', TRY_CAST({s} AS TIMESTAMP)) END")


def _literal(value: object) -> tuple[str, str]:
    if value is None:
        return "NULL", "VARCHAR"
    if isinstance(value, bool):
        return ("true" if value else "false"), "BOOLEAN"
    if isinstance(value, int | float):
        return repr(float(value)) if isinstance(value, float) else str(value), "DOUBLE"
    return f"'{_q(value)}'", "VARCHAR"


def _missing_column(raw_name: str, column: str, field: str, columns: dict[str, str],
                    source: Source) -> str:
    import difflib

    have = [c for c in columns if c != "_row"]
    msg = (f"{raw_name}: column {column!r} (mapped to {field}) is not in the file; "
           f"it has {len(have)} column(s): {', '.join(repr(c) for c in have[:12])}")
    if len(have) == 1:
        for d in (";", "\t", "|", ","):
            if d != source.delimiter and d in have[0]:
                return msg + (f". The header looks {d!r}-delimited: set delimiter: {d!r} in "
                              f"source {source.name!r}")
    lower = {c.lower(): c for c in have}
    if column.lower() in lower:
        return msg + f". Did you mean {lower[column.lower()]!r}? (names are case-sensitive)"
    close = difflib.get_close_matches(column, have, n=1)
    if close:
        return msg + f". Did you mean {close[0]!r}?"
    return msg + f". Fix columns: in source {source.name!r}"


def guess_hint(con: duckdb.DuckDBPyConnection, stage: Path, field: str,
               spec: ColumnSpec | None, source: Source) -> str:
    """Suggest the mapping change that would make most failing values parse."""
    raws = [r[0] for r in con.execute(
        f"SELECT regexp_extract(_reason, '''(.*)''', 1) FROM '{_q(stage)}' "
        f"WHERE _rule = 'bad_value' AND _bad_field = '{_q(field)}' LIMIT 200"
    ).fetchall() if r[0]]
    if not raws:
        return "Check the mapping of this column."
    if field in ("ts", "first_seen"):
        best, hits = None, 0
        for fmt in COMMON_TS_FORMATS:
            n = sum(1 for r in raws if con.execute(
                "SELECT try_strptime(?, ?) IS NOT NULL", [r, fmt]).fetchone()[0])
            if n > hits:
                best, hits = fmt, n
        if best:
            return (f"The values look like {best!r} ({hits} of {len(raws)} sampled parse): set "
                    f"format: \"{best}\" under columns: {field}: in source {source.name!r}.")
        return f"Set format: under columns: {field}: to the layout of these values."
    if all("," in r and r.replace(",", "", 1).replace(".", "").lstrip("-").isdigit()
           for r in raws[:20]):
        return (f"The values use a decimal comma: set decimal: \",\" (and thousands: \".\" if "
                f"needed) in source {source.name!r}.")
    return (f"Check that {field} is mapped to the right column"
            + (f" (now {spec.column!r})" if spec and spec.column else "") + ".")


def _q(s: object) -> str:
    return str(s).replace("'", "''")


def _id(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
