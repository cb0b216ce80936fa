"""Open a source (file or SQL query) as a DuckDB relation of its raw columns plus ``_row``.

Delimited text is parsed by DuckDB's CSV reader (parallel, out-of-core); other formats go
through their Python reader into Arrow. ``_row`` is the 1-based data row within the source, so
quarantined rows can be found again in the original file.

DuckDB's CSV errors do not always name the right line, so when it refuses a file we re-read the
file in Python (:func:`diagnose_text`) and say which line and column are at fault and what to
change. That scan runs only on failure, so the fast path stays fast.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from personas.errors import SourceError
from personas.mapping import Source

DUCKDB_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "latin-1": "latin-1",
                    "latin1": "latin-1", "iso-8859-1": "latin-1", "utf-16": "utf-16"}


@dataclass
class RawSource:
    """A source opened for one scan: SQL to select from and its columns with DuckDB types."""

    name: str
    sql: str
    columns: dict[str, str]
    rows: int | None = None


def fingerprint(path: Path) -> tuple[str, int]:
    """Content hash of a file (what makes re-ingesting the same file a no-op) and its size."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
            size += len(chunk)
    return "sha256:" + h.hexdigest(), size


def open_source(
    con: duckdb.DuckDBPyConnection, source: Source, path: Path | None, view: str,
    tmp_dir: Path,
) -> RawSource:
    """Register ``view`` on ``con`` holding the raw rows of ``path`` (or of the SQL query)."""
    fmt = source.format_for(path)
    if path is not None:
        _check_not_empty(path, source)
    if fmt == "csv":
        return _open_csv(con, source, _utf8_path(path, source, tmp_dir), view, path)
    if fmt == "parquet":
        sql = (f"SELECT file_row_number + 1 AS _row, * EXCLUDE (file_row_number) "
               f"FROM read_parquet('{_q(path)}', file_row_number = true)")
        return _register_sql(con, view, sql, path.name)
    if fmt == "jsonl":
        sql = (f"SELECT row_number() OVER () AS _row, * FROM read_json('{_q(path)}', "
               "format = 'newline_delimited', sample_size = -1)")
        try:
            return _register_sql(con, view, sql, path.name)
        except duckdb.Error as e:
            raise SourceError(f"{path.name}: not valid JSON lines: {_first_line(e)}") from None
    if fmt == "text":
        table = _read_whitespace(_utf8_path(path, source, tmp_dir), source, path)
    elif fmt == "excel":
        table = _read_excel(path, source)
    elif fmt == "rda":
        table = _read_rda(path, source)
    elif fmt == "sql":
        table = read_sql_table(source)
    else:  # pragma: no cover - guarded by the mapping's Literal
        raise SourceError(f"unsupported format {fmt!r}")
    return _register_arrow(con, view, table, path.name if path else source.name)


def read_sql_table(source: Source) -> pa.Table:
    """Run the source's query through SQLAlchemy and return the rows as Arrow (strings kept)."""
    import pandas as pd
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(source.resolved_url())
        with engine.connect() as conn:
            chunks = list(pd.read_sql_query(sa.text(source.query), conn, chunksize=200_000))
    except sa.exc.SQLAlchemyError as e:
        raise SourceError(
            f"source {source.name!r}: the SQL query failed: {_first_line(e)}; check url: and "
            "query: in the mapping"
        ) from None
    if not chunks:
        raise SourceError(f"source {source.name!r}: the SQL query returned no columns")
    df = pd.concat(chunks, ignore_index=True)
    return _with_row(pa.Table.from_pandas(df, preserve_index=False))


def sql_fingerprint(table: pa.Table, source: Source) -> tuple[str, int]:
    """Hash of a query's result: the same rows again are the same source."""
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    data = sink.getvalue()
    h = hashlib.sha256((source.query or "").encode() + b"\0" + data)
    return "sha256:" + h.hexdigest(), len(data)


# ---- delimited text -------------------------------------------------------------------------
def _open_csv(con: duckdb.DuckDBPyConnection, source: Source, path: Path, view: str,
              original: Path) -> RawSource:
    opts = [
        f"delim = '{_q(source.delimiter)}'",
        f"quote = '{_q(source.quote)}'",
        f"header = {str(source.header).lower()}",
        "all_varchar = true",
        f"nullstr = [{', '.join(repr(v) for v in source.null_values)}]",
        f"max_line_size = {int(source.max_line_bytes) + 1024}",
        "strict_mode = true",
        "null_padding = false",
    ]
    if source.column_names:
        opts.append(f"names = [{', '.join(repr(c) for c in source.column_names)}]")
    sql = f"SELECT row_number() OVER () AS _row, * FROM read_csv('{_q(path)}', {', '.join(opts)})"
    try:
        # Parse errors past the sniffed sample surface during the ingest's scan, which calls
        # diagnose_text the same way; nothing is committed before that scan completes.
        return _register_sql(con, view, sql, original.name)
    except (duckdb.Error, EOFError, zlib.error) as e:
        raise diagnose_text(original, source, str(e)) from None


def diagnose_text(path: Path, source: Source, engine_message: str = "") -> SourceError:
    """Re-read a delimited file that the engine refused and explain what is wrong, where."""
    enc = source.encoding
    header: list[str] | None = None
    n_fields = None
    line_no = 0
    try:
        with _open_binary(path) as fh:
            for line_no, raw in enumerate(fh, start=1):
                if len(raw) > source.max_line_bytes:
                    col = _widest_field(raw, source, header)
                    return SourceError(
                        f"{path.name} line {line_no}: the line is {len(raw):,} bytes long, over "
                        f"the limit of {source.max_line_bytes:,} (max_line_bytes){col}. If the "
                        "value is real, raise max_line_bytes: in source "
                        f"{source.name!r}; otherwise look for an unclosed quote before this line."
                    )
                try:
                    text = raw.decode(enc)
                except UnicodeDecodeError as e:
                    col = _field_at(raw, e.start, source, header)
                    bad = raw[max(0, e.start - 8): e.end + 8]
                    return SourceError(
                        f"{path.name} line {line_no}{col}: bytes {raw[e.start:e.end]!r} (in "
                        f"{bad!r}) are not valid {enc}. The file mixes encodings or is not "
                        f"{enc}: set encoding: (e.g. latin-1 or cp1252) in source {source.name!r}, "
                        "or re-export the file as UTF-8."
                    )
                if source.format == "text":
                    continue
                fields = next(csv.reader([text], delimiter=source.delimiter,
                                         quotechar=source.quote))
                if header is None and source.header:
                    header = fields
                    n_fields = len(fields)
                    continue
                if n_fields is None:
                    n_fields = len(fields)
                if len(fields) != n_fields and '"' not in text:
                    return SourceError(
                        f"{path.name} line {line_no}: {len(fields)} fields where the header has "
                        f"{n_fields}; check delimiter: {source.delimiter!r} and quote: in source "
                        f"{source.name!r}, or fix that line."
                    )
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as e:
        return SourceError(
            f"{path.name}: the compressed file is truncated or corrupt after line {line_no} "
            f"({type(e).__name__}: {e}). Re-download or re-export it; nothing was ingested from it."
        )
    return SourceError(f"{path.name}: cannot be read as {source.format or 'csv'}: "
                       f"{_first_line(engine_message)}")


def _check_not_empty(path: Path, source: Source) -> None:
    if not path.exists():
        raise SourceError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise SourceError(
            f"{path.name}: the file is empty (0 bytes); remove it from the input or re-export it"
        )


def _utf8_path(path: Path, source: Source, tmp_dir: Path) -> Path:
    """DuckDB reads UTF-8, UTF-16 and Latin-1; transcode anything else to a temporary file."""
    enc = codecs.lookup(source.encoding).name
    if enc in ("utf-8", "ascii") or source.encoding.lower() in DUCKDB_ENCODINGS:
        if enc not in ("utf-8", "ascii"):
            return _transcode(path, source, tmp_dir)
        return path
    return _transcode(path, source, tmp_dir)


def _transcode(path: Path, source: Source, tmp_dir: Path) -> Path:
    out = tmp_dir / (path.name + ".utf8.csv")
    try:
        with _open_binary(path) as src, open(out, "w", encoding="utf-8", newline="") as dst:
            reader = codecs.getreader(source.encoding)(src, errors="strict")
            while chunk := reader.read(1 << 22):
                dst.write(chunk)
    except UnicodeDecodeError:
        raise diagnose_text(path, source) from None
    except (EOFError, zlib.error, OSError):
        raise diagnose_text(path, source) from None
    return out


def _open_binary(path: Path) -> io.BufferedIOBase:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _field_at(raw: bytes, offset: int, source: Source, header: list[str] | None) -> str:
    idx = raw[:offset].count(source.delimiter.encode("latin-1"))
    name = header[idx] if header and idx < len(header) else f"field {idx + 1}"
    return f", column {name!r}"


def _widest_field(raw: bytes, source: Source, header: list[str] | None) -> str:
    parts = raw.split(source.delimiter.encode("latin-1"))
    i = max(range(len(parts)), key=lambda j: len(parts[j]))
    name = header[i] if header and i < len(header) else f"field {i + 1}"
    return f"; column {name!r} holds {len(parts[i]):,} bytes"


def _read_whitespace(path: Path, source: Source, original: Path) -> pa.Table:
    """Whitespace-separated text (runs of blanks are one separator, as in CDNOW's files)."""
    names = source.column_names
    cols: list[list[str]] | None = None
    with _open_binary(path) as fh:
        reader = io.TextIOWrapper(fh, encoding="utf-8", newline="")
        for line_no, line in enumerate(reader, start=1):
            parts = line.split()
            if not parts:
                continue
            if names is None:
                if source.header:
                    names = parts
                    continue
                names = [f"column{i}" for i in range(len(parts))]
            if cols is None:
                cols = [[] for _ in names]
            if source.header and line_no == 1 and source.column_names:
                continue  # header present but names given explicitly: skip the header line
            if len(parts) != len(names):
                raise SourceError(
                    f"{original.name} line {line_no}: {len(parts)} fields where {len(names)} "
                    f"are expected ({', '.join(names)}); check header: and column_names: in "
                    f"source {source.name!r}"
                )
            for c, v in zip(cols, parts, strict=True):
                c.append(v)
    if names is None:
        raise SourceError(f"{original.name}: no lines to read")
    cols = cols or [[] for _ in names]
    return _with_row(pa.table({n: pa.array(c, pa.string()) for n, c in zip(names, cols,
                                                                               strict=True)}))


def _read_excel(path: Path, source: Source) -> pa.Table:
    import pandas as pd

    try:
        df = pd.read_excel(path, sheet_name=source.sheet or 0, dtype=str,
                           header=0 if source.header else None, engine="openpyxl")
    except Exception as e:  # openpyxl raises many types for a broken workbook
        raise SourceError(f"{path.name}: cannot be read as an Excel workbook: {e}") from None
    df.columns = [str(c) for c in df.columns]
    return _with_row(pa.Table.from_pandas(df, preserve_index=False))


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
            df[c] = df[c].map(lambda v: None if v is None else str(v)).astype("string")
    return _with_row(pa.Table.from_pandas(df, preserve_index=False))


def _with_row(table: pa.Table) -> pa.Table:
    import numpy as np

    return table.add_column(0, "_row", pa.array(np.arange(1, table.num_rows + 1,
                                                          dtype="int64")))


def _register_sql(con: duckdb.DuckDBPyConnection, view: str, sql: str, name: str) -> RawSource:
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS {sql}")
    cols = {r[0]: r[1] for r in con.execute(f"DESCRIBE {view}").fetchall()}
    return RawSource(name=name, sql=view, columns=cols)


def _register_arrow(con: duckdb.DuckDBPyConnection, view: str, table: pa.Table,
                    name: str) -> RawSource:
    con.register(view + "_arrow", table)
    raw = _register_sql(con, view, f"SELECT * FROM {view}_arrow", name)
    raw.rows = table.num_rows
    return raw


def _first_line(e: object) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _q(s: object) -> str:
    return str(s).replace("'", "''")


def iter_lines(path: Path) -> Iterator[bytes]:
    """Raw lines of a (possibly gzip) file; used by tests and diagnostics."""
    with _open_binary(path) as fh:
        yield from fh
