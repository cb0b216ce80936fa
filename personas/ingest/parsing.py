"""SQL that turns one source value into one typed canonical value, and says why it could not.

Each canonical column gets two expressions: the typed value, and (when parsing can fail) the
source text, so a row whose text is present but whose value is NULL is quarantined as
``bad_value`` with the offending text in the reason. Nothing fails silently into a NULL.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from personas.errors import SchemaError
from personas.ingest.clockchange import zoned_sql
from personas.ingest.mapping import ColumnSpec, Source
from personas.ingest.rawsource import RawSource
from personas.sqltext import ident, quote

ID_FIELDS = {"customer_id", "order_id", "product_id", "session_id"}
NUMERIC = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
    "REAL",
    "DECIMAL",
)
COMMON_TS_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%Y%m%d",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%d-%m-%Y %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
)


@dataclass
class FieldSQL:
    """SQL for one canonical column.

    ``source`` is the non-empty source text (NULL when empty), for typed columns only: a row
    whose text is present but whose ``value`` is NULL is a ``bad_value``. It is evaluated only
    inside that check, so its cost is paid on the failing rows.
    """

    value: str
    source: str | None
    column: str | None
    expects: str
    #: timestamps read as local time: the naive value (NULL where the text has an offset)
    naive: str | None = None
    timezone: str = "UTC"


def _is_numeric(vtype: str) -> bool:
    return vtype.upper().startswith(NUMERIC)


def field_sql(
    name: str, spec: ColumnSpec, target: str, raw: RawSource, source: Source, key: str
) -> FieldSQL:
    """Typed SQL for canonical column ``name`` of DuckDB type ``target``."""
    columns = raw.columns
    raw_name = raw.name
    if spec.column is not None:
        if spec.column not in columns or spec.column in ("_row", "_file"):
            raise SchemaError(_missing_column(raw_name, spec.column, name, columns, source))
        v, vtype = ident(spec.column), columns[spec.column]
    elif spec.expr is not None:
        v, vtype = f"CAST(({spec.expr}) AS VARCHAR)", "VARCHAR"
    else:
        v, vtype = _literal(spec.value)
    if spec.values:
        cases = " ".join(
            f"WHEN '{quote(k)}' THEN {_literal(val)[0]}" for k, val in spec.values.items()
        )
        v, vtype = (
            f"CAST(CASE CAST({v} AS VARCHAR) {cases} ELSE CAST({v} AS VARCHAR) END AS VARCHAR)",
            "VARCHAR",
        )
    text = f"NULLIF(trim(CAST({v} AS VARCHAR)), '')"
    if target == "VARCHAR":
        value = _varchar(v, vtype, name)
        if spec.pseudonymise:
            value = f"sha256('{quote(key)}' || {value})"
        return FieldSQL(value, None, spec.column, "text")
    if target == "DOUBLE":
        return FieldSQL(_double(v, vtype, source), text, spec.column, "a number")
    if target == "BOOLEAN":
        return FieldSQL(_boolean(v, vtype), text, spec.column, "true/false (or yes/no, 1/0)")
    if target == "BIGINT":
        return FieldSQL(
            f"TRY_CAST({_double(v, vtype, source)} AS BIGINT)", text, spec.column, "a whole number"
        )
    if target == "TIMESTAMPTZ":
        fmts = spec.formats()
        expects = (
            ("a timestamp matching " + " or ".join(fmts))
            if fmts
            else "an ISO timestamp (set format: for other layouts)"
        )
        tz = spec.timezone or "UTC"
        if not _is_utc(tz) and "error" in (spec.nonexistent, spec.ambiguous):
            expects += f", at a time that occurs exactly once in {tz} (clock changes)"
        value, naive = _timestamp(v, vtype, fmts, tz, spec)
        return FieldSQL(value, text, spec.column, expects, None if _is_utc(tz) else naive, tz)
    raise AssertionError(target)  # pragma: no cover


def _varchar(v: str, vtype: str, name: str) -> str:
    if _is_numeric(vtype):
        if name in ID_FIELDS:
            return (
                f"CASE WHEN {v} = trunc({v}) THEN CAST(CAST({v} AS HUGEINT) AS VARCHAR) "
                f"ELSE CAST({v} AS VARCHAR) END"
            )
        return f"CAST({v} AS VARCHAR)"
    if vtype.upper().startswith(("STRUCT", "MAP", "JSON")) or vtype.endswith("]"):
        return f"CAST(to_json({v}) AS VARCHAR)"
    s = v if vtype.upper() == "VARCHAR" else f"CAST({v} AS VARCHAR)"
    # Surrounding blanks are trimmed; the LIKE tests are cheap, so trim() (which copies the
    # string) runs only on the values that need it.
    slow = f"NULLIF(trim({s}), '')"
    cond = f"{s} LIKE ' %' OR {s} LIKE '% '"
    if name in ID_FIELDS:
        # ids exported through a float column ("17850.0") are the integer id
        slow = f"regexp_replace({slow}, '^(-?[0-9]+)\\.0+$', '\\1')"
        cond += f" OR {s} LIKE '%.%'"
    return f"(CASE WHEN {cond} THEN {slow} ELSE NULLIF({s}, '') END)"


def _double(v: str, vtype: str, source: Source) -> str:
    if _is_numeric(vtype):
        return f"CAST({v} AS DOUBLE)"
    if vtype.upper() == "BOOLEAN":
        return f"CAST(CAST({v} AS INTEGER) AS DOUBLE)"
    s = f"CAST({v} AS VARCHAR)"  # the cast itself allows surrounding blanks
    if source.thousands:
        s = f"replace({s}, '{quote(source.thousands)}', '')"
    if source.decimal != ".":
        s = f"replace({s}, '{quote(source.decimal)}', '.')"
    return f"TRY_CAST({s} AS DOUBLE)"


def _boolean(v: str, vtype: str) -> str:
    if vtype.upper() == "BOOLEAN":
        return v
    if _is_numeric(vtype):
        return f"({v} <> 0)"
    s = f"lower(trim(CAST({v} AS VARCHAR)))"
    return (
        f"CASE WHEN {s} IN ('true', 't', 'yes', 'y', '1') THEN true "
        f"WHEN {s} IN ('false', 'f', 'no', 'n', '0') THEN false END"
    )


def _is_utc(tz: str) -> bool:
    return tz.upper() in ("UTC", "ETC/UTC", "Z", "GMT", "ETC/GMT")


def _zoned(naive: str, tz: str, spec: ColumnSpec) -> str:
    """A naive TIMESTAMP in zone ``tz`` as TIMESTAMPTZ (clock changes: ``spec``'s rules).

    For UTC this is plain arithmetic (make_timestamptz of the epoch microseconds), which costs
    a third of a cast through the ICU calendar.
    """
    if _is_utc(tz):
        return f"make_timestamptz(epoch_us({naive}))"
    return zoned_sql(naive, tz, spec.nonexistent, spec.ambiguous)


def _timestamp(
    v: str, vtype: str, fmts: list[str], tz: str, spec: ColumnSpec
) -> tuple[str, str | None]:
    """Naive values are local time in ``tz``; values with an offset keep it; result is UTC.

    Returns the value and the naive local time it was read from (None: never local time).
    """
    t = vtype.upper()
    if t in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        return v, None
    if t.startswith("TIMESTAMP") or t == "DATE":
        naive = f"CAST({v} AS TIMESTAMP)"
        return _zoned(naive, tz, spec), naive
    s = v if t == "VARCHAR" else f"CAST({v} AS VARCHAR)"
    if fmts:
        # coalesce evaluates lazily: the trimmed retry runs only on values that failed
        tries = [f"try_strptime({s}, '{quote(f)}')" for f in fmts]
        tries += [f"try_strptime(trim({s}), '{quote(f)}')" for f in fmts]
        parsed = f"coalesce({', '.join(tries)})"
        if any("%z" in f or "%Z" in f for f in fmts):
            return f"CAST({parsed} AS TIMESTAMPTZ)", None
        return _zoned(parsed, tz, spec), parsed
    has_offset = (
        f"(suffix(upper({s}), 'Z') OR contains(substr({s}, 11), '+') OR "
        f"contains(substr({s}, 11), '-'))"
    )
    naive = f"TRY_CAST({s} AS TIMESTAMP)"
    return (
        f"CASE WHEN {has_offset} THEN TRY_CAST({s} AS TIMESTAMPTZ) "
        f"ELSE {_zoned(naive, tz, spec)} END"
    ), f"CASE WHEN NOT {has_offset} THEN {naive} END"


def _literal(value: object) -> tuple[str, str]:
    if value is None:
        return "NULL", "VARCHAR"
    if isinstance(value, bool):
        return ("true" if value else "false"), "BOOLEAN"
    if isinstance(value, int | float):
        return repr(float(value)) if isinstance(value, float) else str(value), "DOUBLE"
    return f"'{quote(value)}'", "VARCHAR"


def _missing_column(
    raw_name: str, column: str, field: str, columns: dict[str, str], source: Source
) -> str:
    import difflib

    have = [c for c in columns if not c.startswith("_")]
    msg = (
        f"{raw_name}: column {column!r} (mapped to {field}) is not in the file; "
        f"it has {len(have)} column(s): {', '.join(repr(c) for c in have[:12])}"
    )
    if len(have) == 1:
        for d in (";", "\t", "|", ","):
            if d != source.delimiter and d in have[0]:
                return msg + (
                    f". The header looks {d!r}-delimited: set delimiter: {d!r} in "
                    f"source {source.name!r}"
                )
    lower = {c.lower(): c for c in have}
    fix = f"under columns: in source {source.name!r}"
    if column.lower() in lower:
        other = lower[column.lower()]
        return (
            msg + f". Did you mean {other!r}? Names are case-sensitive: write "
            f"{field}: {other} {fix}"
        )
    close = difflib.get_close_matches(column, have, n=1)
    if close:
        return msg + f". Did you mean {close[0]!r}? Then write {field}: {close[0]} {fix}"
    return msg + f". Map {field} to one of these columns {fix}"


def guess_hint(
    con: duckdb.DuckDBPyConnection,
    raws: list[str],
    field: str,
    spec: ColumnSpec | None,
    source: Source,
) -> str:
    """Suggest the mapping change that would make most of the failing values ``raws`` parse."""
    if not raws:
        return "Check the mapping of this column."
    if field in ("ts", "first_seen"):
        counts = ", ".join(f"count(try_strptime(r, '{quote(f)}'))" for f in COMMON_TS_FORMATS)
        got = con.execute(f"SELECT {counts} FROM unnest(?::VARCHAR[]) AS a(r)", [raws]).fetchone()
        best, hits = max(zip(COMMON_TS_FORMATS, got, strict=True), key=lambda x: x[1])
        if best and hits:
            return (
                f"The values look like {best!r} ({hits} of {len(raws)} sampled parse): set "
                f'format: "{best}" under columns: {field}: in source {source.name!r}'
                + (
                    " (check whether day or month comes first)"
                    if "%d/%m" in best or "%m/%d" in best
                    else ""
                )
                + "."
            )
        return (
            f"Set format: under columns: {field}: to the layout of these values "
            "(strptime codes such as %d/%m/%Y %H:%M)."
        )
    import re

    sample = raws[:50]
    if all(re.fullmatch(r"-?\d+,\d+", r.strip()) for r in sample):
        return f'The values use a decimal comma: set decimal: "," in source {source.name!r}.'
    if all(re.fullmatch(r"-?\d{1,3}([.,]\d{3})+([.,]\d+)?", r.strip()) for r in sample):
        sep = "," if "," in sample[0] and sample[0].rfind(",") < sample[0].rfind(".") else "."
        dec = "." if sep == "," else ","
        return (
            f'The values have thousands separators: set thousands: "{sep}" (and decimal: '
            f'"{dec}") in source {source.name!r}.'
        )
    if all(
        re.fullmatch(r"\s*[^\d\s.,-]+\s*-?[\d.,]+\s*|\s*-?[\d.,]+\s*[^\d\s.,-]+\s*", r)
        for r in sample
    ):
        return (
            f"The values carry a unit or currency sign: map {field} with expr: that strips "
            f"it, e.g. regexp_replace(<column>, '[^0-9.-]', '', 'g')."
        )
    return (
        f"Check that {field} is mapped to the right column"
        + (f" (now {spec.column!r})" if spec and spec.column else "")
        + "."
    )
