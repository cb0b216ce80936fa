"""Open sources as DuckDB views of their raw columns plus ``_row`` and ``_file``, by format.

``_row`` is the 1-based data row within its file (header excluded), so a quarantined row can be
found again in the original; ``_file`` is the file's index within the group read together
(:class:`personas.ingest.rawsource.RawSource`).

Delimited and whitespace text is read by DuckDB's CSV reader (:mod:`personas.ingest.textfiles`),
Parquet and JSON lines by DuckDB's own readers; Excel workbooks, R data files and SQL query
results go through their Python reader into Arrow.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import duckdb
import pyarrow as pa

from personas.errors import MappingError, SourceError
from personas.ingest.diagnose import diagnose_json
from personas.ingest.files import check_not_empty
from personas.ingest.mapping import Source
from personas.ingest.rawsource import RawSource, register_arrow, register_sql, with_row
from personas.ingest.textfiles import open_delimited, open_whitespace
from personas.sqltext import first_line, ident, quote


def open_source(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    paths: list[Path] | None,
    view: str,
    tmp_dir: Path,
    table: pa.Table | None = None,
) -> RawSource:
    """Register ``view`` on ``con`` holding the raw rows of ``paths`` (or of an Arrow table).

    Several paths are read in one scan (they must share format and header); ``_file`` is the
    index of the row's file in ``paths``.
    """
    if table is not None:
        return register_arrow(con, view, table, source.name)
    assert paths
    fmt = source.format_for(paths[0])
    for p in paths:
        check_not_empty(p)
    if fmt in ("csv", "tsv"):
        return open_delimited(con, source, paths, view, tmp_dir)
    if fmt == "text":
        return open_whitespace(con, source, paths, view, tmp_dir)
    if len(paths) != 1:  # pragma: no cover - group_key only groups text formats
        raise AssertionError("only delimited files are read in groups")
    path = paths[0]
    if fmt == "parquet":
        sql = (
            f"SELECT file_row_number + 1 AS _row, 0 AS _file, * EXCLUDE (file_row_number) "
            f"FROM read_parquet('{quote(path)}', file_row_number = true)"
        )
        try:
            return register_sql(con, view, sql, path.name)
        except duckdb.Error as e:
            raise SourceError(f"{path.name}: cannot be read as Parquet: {first_line(e)}") from None
    if fmt == "jsonl":
        try:
            return open_jsonl(con, source, path, view)
        except duckdb.Error as e:
            raise diagnose_json(path, source, str(e)) from None
    if fmt == "excel":
        return register_arrow(con, view, _read_excel(path, source), path.name)
    if fmt == "rda":
        return register_arrow(con, view, _read_rda(path, source), path.name)
    raise MappingError(  # pragma: no cover - guarded by the mapping's Literal
        f"source {source.name!r}: format {fmt!r} cannot be read from a file"
    )


def open_jsonl(con: duckdb.DuckDBPyConnection, source: Source, path: Path, view: str) -> RawSource:
    """JSON lines as a view with its keys declared: every scalar read as text, as in a CSV.

    The keys (the columns) come from the first :data:`JSON_SAMPLE_ROWS` lines, and the view
    declares them with ``columns =``, so DuckDB neither parses the whole file just to learn
    its schema nor does so again at every query that binds the view (a full inference cost
    about as much as the read itself, three times over). Scalars are read as text, so a value
    of another type after the sample is parsed and judged like any other text (``bad_value``
    naming the row) instead of failing the file; nested values stay JSON. A key first seen
    after the sample is not read at all, so it cannot reach the lake; where it would matter,
    the whole file's keys are taken instead (:func:`_needs_all_keys`).
    """
    scan = f"read_json('{quote(path)}', format = 'newline_delimited'"
    keys = _json_keys(con, scan, JSON_SAMPLE_ROWS)
    declared = _declared_view(view, scan, keys)
    if _needs_all_keys(con, source, declared, keys):
        keys = _json_keys(con, scan, -1)
        declared = _declared_view(view, scan, keys)
    return register_sql(con, view, declared, path.name)


#: Lines of a JSON-lines file whose keys name its columns (DuckDB's own default sample).
JSON_SAMPLE_ROWS = 20_480


def _json_keys(con: duckdb.DuckDBPyConnection, scan: str, sample: int) -> dict[str, str]:
    """Key -> declared type (``JSON`` for objects and arrays, else ``VARCHAR``)."""
    described = con.execute(f"DESCRIBE SELECT * FROM {scan}, sample_size = {sample})").fetchall()
    return {
        name: "JSON" if t.upper().startswith(("STRUCT", "MAP")) or t.endswith("]") else "VARCHAR"
        for name, t, *_ in described
    }


def _declared_view(view: str, scan: str, keys: dict[str, str]) -> str:
    cols = ", ".join(f"'{quote(k)}': '{t}'" for k, t in keys.items())
    return f"SELECT row_number() OVER () AS _row, 0 AS _file, * FROM {scan}, columns = {{{cols}}})"


def _needs_all_keys(
    con: duckdb.DuckDBPyConnection, source: Source, sql: str, keys: dict[str, str]
) -> bool:
    """Whether a key the sample did not see could matter: the mapping names one, or keeps all.

    ``attributes: rest`` keeps every key; a column named under ``columns:``, ``attributes:``,
    ``personal_data:``, ``lookups:`` or ``dedupe:`` must be found if it is anywhere in the
    file; an ``expr:`` or ``where:`` is bound against the sampled keys (lookup columns
    stand in as NULLs) and any column it cannot find sends us to the whole file.
    """
    named: set[str] = set(source.personal_data)
    named |= {lk.keys()[0] for lk in source.lookups}
    if not isinstance(source.dedupe, str):
        named |= set(source.dedupe.key) - {n for o in source.outputs for n in o.columns}
    exprs: list[str] = []
    for out in source.outputs:
        if out.attributes == "rest":
            return True
        named |= {c for c in out.attributes or [] if isinstance(c, str)}
        exprs += [v for d in out.attributes or [] if isinstance(d, dict) for v in d.values()]
        named |= {s.column for s in out.columns.values() if s.column is not None}
        exprs += [s.expr for s in out.columns.values() if s.expr is not None]
        exprs += [out.where] if out.where else []
    if named - set(keys):
        return True
    if not exprs:
        return False
    looked_up = [new for lk in source.lookups for new in lk.renames().values()]
    stand_ins = "".join(f", NULL AS {ident(c)}" for c in looked_up if c not in keys)
    try:
        for e in exprs:
            con.execute(f"SELECT ({e}) FROM (SELECT *{stand_ins} FROM ({sql})) LIMIT 0")
    except duckdb.BinderException:
        return True
    except duckdb.Error:
        return False  # not a missing column: staging reports it as the mapping's fault
    return False


def read_sql_table(source: Source) -> pa.Table:
    """Run the source's query through SQLAlchemy and return the rows as Arrow."""
    import pandas as pd
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(source.resolved_url())
    except (sa.exc.ArgumentError, ValueError) as e:
        raise MappingError(
            f"source {source.name!r}: url: is not a valid SQLAlchemy URL ({first_line(e)}); write "
            "it like postgresql+psycopg://user:${PGPASSWORD}@host:5432/db"
        ) from None
    try:
        with engine.connect() as conn:
            chunks = list(pd.read_sql_query(sa.text(source.query or ""), conn, chunksize=200_000))
    except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as e:
        cause = e.__cause__ if isinstance(e, pd.errors.DatabaseError) and e.__cause__ else e
        raise SourceError(
            f"source {source.name!r}: the SQL query failed: {first_line(cause)}; check url: and "
            "query: in the mapping"
        ) from None
    finally:
        engine.dispose()
    if not chunks:
        raise SourceError(f"source {source.name!r}: the SQL query returned no columns")
    df = pd.concat(chunks, ignore_index=True)
    for c in df.columns:
        if df[c].dtype == object:  # Decimal, UUID, ... -> text that our casts understand
            df[c] = df[c].map(lambda v: None if v is None else str(v)).astype("string")
    return with_row(pa.Table.from_pandas(df, preserve_index=False))


def sql_fingerprint(table: pa.Table, source: Source) -> tuple[str, int]:
    """Hash of a query's result: the same rows again are the same source."""
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    data = sink.getvalue()
    h = hashlib.sha256((source.query or "").encode() + b"\0" + data)
    return "sha256:" + h.hexdigest(), len(data)


def _check_first_sheet(path: Path, source: Source) -> None:
    """Refuse a workbook whose first sheet is not the data, naming the sheet that is.

    Exports often open with a cover or notes sheet; reading it would fail later with missing
    columns and no word about sheets.
    """
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True)
    except Exception:
        return  # the read below reports a broken workbook
    try:
        headers = {
            ws.title: {str(c) for c in next(ws.iter_rows(max_row=1, values_only=True), ())}
            for ws in wb.worksheets
        }
    finally:
        wb.close()
    wanted = {spec.column for o in source.outputs for spec in o.columns.values() if spec.column}
    first = next(iter(headers), None)
    if first is None or not wanted or wanted <= headers[first]:
        return
    fits = [name for name, cols in headers.items() if wanted <= cols]
    lacking = ", ".join(sorted(wanted - headers[first])[:5])
    hint = (
        f"sheet {fits[0]!r} has them: set sheet: {fits[0]!r}"
        if fits
        else f"no sheet has all of them (sheets: {', '.join(map(repr, headers))}); set sheet:"
    )
    raise SourceError(
        f"{path.name}: the first sheet {first!r} lacks the mapped column(s) {lacking}; "
        f"{hint} in source {source.name!r}"
    )


def _read_excel(path: Path, source: Source) -> pa.Table:
    import pandas as pd

    if source.sheet is None and source.header:
        _check_first_sheet(path, source)
    try:
        df = pd.read_excel(
            path,
            sheet_name=source.sheet if source.sheet is not None else 0,
            dtype=str,
            header=0 if source.header else None,
            engine="openpyxl",
        )
    except (ValueError, KeyError) as e:
        raise SourceError(
            f"{path.name}: {e}; set sheet: (a sheet name or 0-based index) in source "
            f"{source.name!r}"
        ) from None
    except Exception as e:  # openpyxl raises many types for a broken workbook
        raise SourceError(f"{path.name}: cannot be read as an Excel workbook: {e}") from None
    if source.column_names:
        df.columns = list(source.column_names)
    elif not source.header:
        df.columns = [f"column{i + 1}" for i in range(len(df.columns))]
    df.columns = [str(c) for c in df.columns]
    df = df.astype(object).where(df.notna(), None)
    return with_row(pa.Table.from_pandas(df, preserve_index=False))


def _read_rda(path: Path, source: Source) -> pa.Table:
    import pandas as pd
    import pyreadr

    try:
        objs = pyreadr.read_r(str(path))
    except Exception as e:  # pyreadr raises its own LibrdataError and others
        raise SourceError(f"{path.name}: cannot be read as R data: {e}") from None
    name = source.object or (next(iter(objs)) if len(objs) == 1 else None)
    if name is None or name not in objs:
        raise SourceError(
            f"{path.name}: holds objects {', '.join(objs)}; set object: to one of them in source "
            f"{source.name!r}"
        )
    df = objs[name]
    for c in df.columns:
        if isinstance(df[c].dtype, pd.CategoricalDtype):
            df[c] = df[c].astype(object).where(df[c].notna(), None).astype("string")
        elif df[c].dtype == object:
            df[c] = df[c].map(lambda v: None if v is None or v != v else str(v)).astype("string")
    return with_row(pa.Table.from_pandas(df, preserve_index=False))
