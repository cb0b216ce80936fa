"""Open sources as DuckDB views of their raw columns plus ``_row`` and ``_file``.

``_row`` is the 1-based data row within its file (header excluded), so a quarantined row can be
found again in the original; ``_file`` is the file's index within the group read together.

Delimited text is read by DuckDB's CSV reader without sniffing: we read the header line
ourselves and pass the column names, which makes many small daily files cheap (sniffing cost
about 15 ms per file). Files of one source with the same header are read in one scan; row
numbers are counted per file from a cheap pre-count. A large file is cut into chunks
(:func:`split_file`) that the ingest parses concurrently; anything not UTF-8 is transcoded on
the way. Other formats go through their Python reader into Arrow.

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
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from personas.errors import MappingError, SourceError
from personas.ingest.mapping import Lookup, Source
from personas.sqltext import first_line, ident, literal, quote

try:  # Intel ISA-L inflates gzip about 2.5x faster than zlib
    from isal import igzip as _fast_gzip
    from isal.isal_zlib import error as _isal_error
except ImportError:  # pragma: no cover - exercised only where isal is not installed
    _fast_gzip = None  # type: ignore[assignment]
    _isal_error = zlib.error  # type: ignore[assignment,misc]

# What a broken or truncated compressed file raises, whichever library inflates it.
_BROKEN = (EOFError, zlib.error, _isal_error, gzip.BadGzipFile, OSError)

# Delimited files at least this large (on disk) are split into chunks parsed in parallel.
SPLIT_BYTES = 32 << 20
CHUNK_BYTES = 64 << 20
READ_BYTES = 4 << 20
# Delimited files smaller than this are read together with others of the same layout.
GROUP_BYTES = 16 << 20
_TEXT_FORMATS = ("csv", "tsv", "text")


@dataclass
class RawSource:
    """A source opened for one scan: the view to select from and its columns with DuckDB types."""

    name: str
    sql: str
    columns: dict[str, str]
    files: list[str] = field(default_factory=lambda: [])
    rows: int | None = None
    counts: list[int] | None = None
    lookup_columns: list[str] = field(default_factory=list)
    lookup_flags: dict[str, str] = field(default_factory=dict)

    def data_columns(self) -> list[str]:
        """Columns that came from the source itself (not row numbers, not lookups)."""
        return [
            c
            for c in self.columns
            if c not in ("_row", "_file")
            and not c.startswith("_lk_")
            and c not in self.lookup_columns
        ]


def fingerprint(path: Path) -> tuple[str, int]:
    """Content hash of a file (what makes re-ingesting the same file a no-op) and its size."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
            size += len(chunk)
    return "sha256:" + h.hexdigest(), size


# ---- grouping ---------------------------------------------------------------------------
def group_key(source: Source, path: Path) -> tuple[Any, ...] | None:
    """Files with the same key can be read in one scan; ``None`` means read this file alone."""
    fmt = source.format_for(path)
    size = path.stat().st_size
    if fmt not in _TEXT_FORMATS or size >= GROUP_BYTES or size == 0:
        return None
    try:
        names = tuple(header_names(path, source))
    except SourceError:
        return None  # read alone, so the error names this file only
    return (source.name, fmt, names)


def header_names(path: Path, source: Source) -> list[str]:
    """Column names of a delimited or whitespace file: from its header line or the mapping."""
    fmt = source.format_for(path)
    first = _first_line(path, source)
    if fmt == "text":
        fields = first.split()
    else:
        fields = next(csv.reader([first], delimiter=source.sep(path), quotechar=source.quote), [])
    if source.column_names:
        if not source.header and len(fields) != len(source.column_names):
            raise SourceError(
                f"{path.name} line 1: {len(fields)} fields but column_names: lists "
                f"{len(source.column_names)} ({', '.join(source.column_names)}); fix "
                f"column_names: or delimiter: in source {source.name!r}"
            )
        return list(source.column_names)
    if not source.header:
        return [f"column{i}" for i in range(1, len(fields) + 1)]
    names = [f.strip() for f in fields]
    for i, n in enumerate(names):
        if not n:
            names[i] = f"column{i + 1}"
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        if n in seen:
            raise SourceError(
                f"{path.name} line 1: column name {n!r} appears twice (fields {seen[n] + 1} and "
                f"{i + 1}); rename one in the file or set header: false and column_names: in "
                f"source {source.name!r}"
            )
        seen[n] = i
    return names


def _first_line(path: Path, source: Source) -> str:
    enc = _codec(source.encoding)
    try:
        with _open_binary(path) as fh:
            text = io.TextIOWrapper(fh, encoding=enc, errors="strict", newline="").readline(
                source.max_line_bytes + 2
            )
    except UnicodeDecodeError:
        raise diagnose_text(path, source) from None
    except _BROKEN as e:
        raise SourceError(
            f"{path.name}: the compressed file is corrupt at its start ({type(e).__name__}: "
            f"{e}). Re-download or re-export it; nothing was ingested from it."
        ) from None
    if len(text) > source.max_line_bytes:
        raise diagnose_text(path, source)
    text = text.lstrip("\ufeff").rstrip("\r\n")
    if not text.strip():
        raise SourceError(
            f"{path.name} line 1: the first line is blank; remove leading blank lines or set "
            f"header: false and column_names: in source {source.name!r}"
        )
    return text


# ---- opening -------------------------------------------------------------------------------
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
        return _register_arrow(con, view, table, source.name)
    assert paths
    fmt = source.format_for(paths[0])
    for p in paths:
        check_not_empty(p)
    if fmt in ("csv", "tsv"):
        return _open_delimited(con, source, paths, view, tmp_dir)
    if fmt == "text":
        return _open_whitespace(con, source, paths, view, tmp_dir)
    if len(paths) != 1:  # pragma: no cover - group_key only groups text formats
        raise AssertionError("only delimited files are read in groups")
    path = paths[0]
    if fmt == "parquet":
        sql = (
            f"SELECT file_row_number + 1 AS _row, 0 AS _file, * EXCLUDE (file_row_number) "
            f"FROM read_parquet('{quote(path)}', file_row_number = true)"
        )
        try:
            return _register_sql(con, view, sql, path.name)
        except duckdb.Error as e:
            raise SourceError(f"{path.name}: cannot be read as Parquet: {first_line(e)}") from None
    if fmt == "jsonl":
        sql = (
            f"SELECT row_number() OVER () AS _row, 0 AS _file, * FROM read_json('{quote(path)}', "
            "format = 'newline_delimited', sample_size = -1)"
        )
        try:
            return _register_sql(con, view, sql, path.name)
        except duckdb.Error as e:
            raise diagnose_json(path, source, str(e)) from None
    if fmt == "excel":
        return _register_arrow(con, view, _read_excel(path, source), path.name)
    if fmt == "rda":
        return _register_arrow(con, view, _read_rda(path, source), path.name)
    raise MappingError(  # pragma: no cover - guarded by the mapping's Literal
        f"source {source.name!r}: format {fmt!r} cannot be read from a file"
    )


def _open_delimited(
    con: duckdb.DuckDBPyConnection, source: Source, paths: list[Path], view: str, tmp_dir: Path
) -> RawSource:
    names = header_names(paths[0], source)
    plain = [_plain_utf8(p, source, tmp_dir) for p in paths]
    opts = _csv_options(source, names, source.sep(paths[0]), source.header)
    return _register_lines(con, source, paths, plain, view, opts, names)


def _csv_options(source: Source, names: list[str], sep: str, header: bool) -> list[str]:
    """Strict ``read_csv`` options: every column text, nothing guessed, bad lines raise."""
    cols = "{" + ", ".join(f"'{quote(n)}': 'VARCHAR'" for n in names) + "}"
    return [
        "auto_detect = false",
        f"columns = {cols}",
        f"delim = '{quote(sep)}'",
        f"quote = '{quote(source.quote)}'",
        f"escape = '{quote(source.quote)}'",
        f"header = {str(header).lower()}",
        f"nullstr = [{', '.join(literal(v) for v in source.null_values)}]",
        f"max_line_size = {int(source.max_line_bytes) + 2}",
        "strict_mode = true",
        "null_padding = false",
    ]


def _open_whitespace(
    con: duckdb.DuckDBPyConnection, source: Source, paths: list[Path], view: str, tmp_dir: Path
) -> RawSource:
    """Whitespace-separated text (runs of blanks are one separator, as in CDNOW's files)."""
    names = header_names(paths[0], source)
    plain = [_plain_utf8(p, source, tmp_dir) for p in paths]
    opts = [
        "auto_detect = false",
        "columns = {'line': 'VARCHAR'}",
        "delim = '\x1f'",
        "quote = ''",
        "escape = ''",
        "header = false",
        f"max_line_size = {int(source.max_line_bytes) + 2}",
    ]
    raw = _register_lines(
        con, source, paths, plain, view + "_lines", opts, ["line"], skip_header=source.header
    )
    parts = "string_split_regex(trim(line, ' \t\r'), '[ \t]+')"
    nulls = ", ".join(literal(v) for v in source.null_values if v)
    cells = []
    for i, n in enumerate(names):
        v = f"p[{i + 1}]"
        if nulls:
            v = f"CASE WHEN {v} IN ({nulls}) THEN NULL ELSE {v} END"
        cells.append(f"{v} AS {ident(n)}")
    body = (
        f"SELECT _row, _file, {parts} AS p FROM {raw.sql} "
        "WHERE line IS NOT NULL AND trim(line, ' \t\r') <> ''"
    )
    bad = con.execute(
        f"SELECT _file, _row, len(p) FROM ({body}) WHERE len(p) <> {len(names)} "
        "ORDER BY _file, _row LIMIT 1"
    ).fetchone()
    if bad:
        f, row, n = bad
        line = row + (1 if source.header else 0)
        raise SourceError(
            f"{paths[f].name} line {line}: {n} fields where {len(names)} are expected "
            f"({', '.join(names)}); check header: and column_names: in source {source.name!r}, "
            "or fix that line"
        )
    out = _register_sql(
        con, view, f"SELECT _row, _file, {', '.join(cells)} FROM ({body})", raw.name
    )
    out.files, out.counts = raw.files, raw.counts
    return out


def _register_lines(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    paths: list[Path],
    plain: list[Path],
    view: str,
    opts: list[str],
    names: list[str],
    skip_header: bool = False,
) -> RawSource:
    """A view over delimited files with per-file ``_row`` (a streaming row_number per scan)."""
    lst = "[" + ", ".join(f"'{quote(p)}'" for p in plain) + "]"
    scan = f"read_csv({lst}, {', '.join(opts)})"
    counts: list[int] | None = None
    if len(plain) > 1:
        try:
            got = dict(
                con.execute(f"SELECT file_index, count(*) FROM {scan} GROUP BY 1").fetchall()
            )
        except (duckdb.Error, *_BROKEN) as e:
            raise diagnose_files(paths, source, str(e)) from None
        counts = [int(got.get(i, 0)) for i in range(len(plain))]
    cols = ", ".join(ident(n) for n in names)
    if counts is None:
        row = "row_number() OVER ()"
        fidx = "0"
    else:
        offsets, total = [], 0
        for n in counts:
            offsets.append(total)
            total += n
        row = (
            f"row_number() OVER () - [{', '.join(map(str, offsets))}]"
            "[CAST(file_index AS BIGINT) + 1]"
        )
        fidx = "CAST(file_index AS INTEGER)"
    if skip_header:
        inner = f"SELECT {row} - 1 AS _row, {fidx} AS _file, {cols} FROM {scan}"
        sql = f"SELECT * FROM ({inner}) WHERE _row > 0"
        if counts is not None:
            counts = [max(0, n - 1) for n in counts]
    else:
        sql = f"SELECT {row} AS _row, {fidx} AS _file, {cols} FROM {scan}"
    raw = _register_sql(
        con, view, sql, paths[0].name if len(paths) == 1 else f"{paths[0].name} .. {paths[-1].name}"
    )
    raw.files = [p.name for p in paths]
    raw.counts = counts
    return raw


# ---- large delimited files: split into chunks parsed concurrently --------------------------
@dataclass
class Chunk:
    """A piece of a large delimited file, cut at a line end."""

    path: Path
    index: int
    header: bool


def splittable(source: Source, path: Path) -> bool:
    """Whether ``path`` is large enough, and of a format, to be parsed in parallel chunks.

    Not when the mapping uses ``_row`` in an expression: row numbers are only known for the
    whole file once every chunk is parsed.
    """
    if source.format_for(path) not in ("csv", "tsv") or path.stat().st_size < SPLIT_BYTES:
        return False
    texts = [o.where or "" for o in source.outputs] + [
        c.expr or "" for o in source.outputs for c in o.columns.values()
    ]
    return not any(re.search(r"\b_row\b", t) for t in texts)


def split_file(
    path: Path, source: Source, tmp_dir: Path, chunk_bytes: int | None = None
) -> Iterator[Chunk]:
    """Inflate / transcode ``path`` into UTF-8 chunk files, yielding each as it is written.

    Row numbering needs the rows in order, and DuckDB numbers rows on one thread, so a large
    file is parsed as several chunks at once instead, each numbering its own rows; the offsets
    are added once every chunk's row count is known. Cuts are at the last line end of each
    block. A cut inside a quoted value that spans lines leaves an open quote at the end of one
    chunk, which DuckDB refuses; the ingest then reads the file in one scan instead.
    """
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    enc = _codec(source.encoding)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    index, size = 0, 0
    out: Any = None
    try:
        with _open_binary(path) as raw_fh:
            fh: Any = raw_fh
            if enc not in ("utf-8", "ascii"):
                fh = _Utf8Reader(codecs.getreader(enc)(raw_fh, errors="strict"))
            # small reads, streamed into the chunk file: a fresh 64 MB block at a time cost
            # as much in page faults as the inflating itself
            while block := fh.read(min(READ_BYTES, chunk_bytes)):
                if index == 0 and out is None and block.startswith(b"\xef\xbb\xbf"):
                    block = block[3:]
                if out is None:
                    out = open(_chunk_path(path, tmp_dir, index), "wb")  # noqa: SIM115
                cut = block.rfind(b"\n") + 1 if size + len(block) >= chunk_bytes else 0
                if cut <= 0:  # not full yet, or no line end in this block: keep appending
                    out.write(block)
                    size += len(block)
                    if size > source.max_line_bytes + chunk_bytes:
                        raise diagnose_text(path, source)
                    continue
                out.write(memoryview(block)[:cut])
                out.close()
                yield Chunk(_chunk_path(path, tmp_dir, index), index, index == 0 and source.header)
                index += 1
                rest = memoryview(block)[cut:]
                out = open(_chunk_path(path, tmp_dir, index), "wb")  # noqa: SIM115
                out.write(rest)
                size = len(rest)
            if out is not None:
                out.close()
                last = _chunk_path(path, tmp_dir, index)
                if size and not _blank_tail(last, size):
                    yield Chunk(last, index, index == 0 and source.header)
                else:
                    last.unlink(missing_ok=True)
    except (UnicodeDecodeError, *_BROKEN):
        raise diagnose_text(path, source) from None
    finally:
        if out is not None:
            out.close()


def _chunk_path(path: Path, tmp_dir: Path, index: int) -> Path:
    return tmp_dir / f"{path.name}.{index:05d}.chunk"


def _blank_tail(chunk: Path, size: int) -> bool:
    """Drop a blank unfinished last line from ``chunk``; whether nothing else is left in it."""
    with open(chunk, "r+b") as fh:
        fh.seek(max(0, size - READ_BYTES))
        end = fh.read()
        tail = end[end.rfind(b"\n") + 1 :]
        if tail and not tail.strip():
            size -= len(tail)
            fh.truncate(size)
    return size == 0


class _Utf8Reader:
    """A binary reader of UTF-8 bytes over a text stream (for transcoding while splitting)."""

    def __init__(self, text: Any):
        self.text = text

    def read(self, n: int) -> bytes:
        return self.text.read(n).encode("utf-8")


def chunk_source(source: Source, chunk: Chunk, names: list[str], sep: str) -> RawSource:
    """A raw source (inline SQL, no view) over one chunk: any connection can scan it."""
    opts = _csv_options(source, names, sep, chunk.header)
    sql = (
        f"(SELECT row_number() OVER () AS _row, 0 AS _file, "
        f"{', '.join(ident(n) for n in names)} FROM read_csv('{quote(chunk.path)}', "
        f"{', '.join(opts)}))"
    )
    columns = {"_row": "BIGINT", "_file": "INTEGER", **dict.fromkeys(names, "VARCHAR")}
    return RawSource(name=chunk.path.name, sql=sql, columns=columns, files=[chunk.path.name])


def prepare_lookups(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    base_dir: Path | None,
    tmp_dir: Path,
    cache: dict[tuple[str, str], tuple[str, dict[str, str]]],
) -> None:
    """Load every lookup of ``source`` into a table (once per ingest; later calls reuse it)."""
    for lk in source.lookups:
        _lookup_table(con, lk, source, base_dir, tmp_dir, cache)


def attach_lookups(
    con: duckdb.DuckDBPyConnection,
    raw: RawSource,
    source: Source,
    base_dir: Path | None,
    tmp_dir: Path,
    cache: dict[tuple[str, str], tuple[str, dict[str, str]]],
) -> RawSource:
    """Left-join each lookup of ``source`` onto ``raw`` (inline SQL); rows are unchanged.

    Each lookup holds one row per key (checked when it is loaded), so the join neither adds
    nor loses rows. ``_lk_<i>`` tells whether the key was found: the ``unmatched_<name>`` flag.
    """
    if not source.lookups:
        return raw
    joins, froms = [], [f"{raw.sql} r"]
    columns = dict(raw.columns)
    extra: list[str] = []
    flags: dict[str, str] = {}
    for i, lk in enumerate(source.lookups):
        left = lk.keys()[0]
        if left not in raw.columns:
            raise MappingError(
                f"{raw.name}: lookup {lk.name!r} joins on {left!r}, which is not a column of "
                f"the file ({', '.join(raw.data_columns())}); fix key: in source {source.name!r}"
            )
        table, lk_cols = _lookup_table(con, lk, source, base_dir, tmp_dir, cache)
        alias = f"lk{i}"
        for col, new in lk.renames().items():
            if col not in lk_cols or col == "__key":
                raise MappingError(
                    f"lookup {lk.name!r}: column {col!r} is not in {lk.file} (it has "
                    f"{', '.join(c for c in lk_cols if not c.startswith('_'))}); fix columns: "
                    f"of the lookup in source {source.name!r}"
                )
            if new in columns:
                raise MappingError(
                    f"lookup {lk.name!r}: column {new!r} already exists in {raw.name}; rename it "
                    f"with columns: {{{col}: <new name>}} in source {source.name!r}"
                )
            extra.append(new)
            columns[new] = lk_cols[col]
            joins.append(f"{alias}.{ident(col)} AS {ident(new)}")
        flag = f"_lk_{i}"
        joins.append(f"({alias}.__key IS NOT NULL) AS {flag}")
        columns[flag] = "BOOLEAN"
        flags[f"unmatched_{lk.name}"] = f"NOT {flag}"
        froms.append(
            f"LEFT JOIN {table} {alias} ON CAST(r.{ident(left)} AS VARCHAR) = {alias}.__key"
        )
    sql = f"(SELECT r.*, {', '.join(joins)} FROM {' '.join(froms)})"
    return RawSource(
        name=raw.name,
        sql=sql,
        columns=columns,
        files=raw.files,
        rows=raw.rows,
        counts=raw.counts,
        lookup_columns=[*raw.lookup_columns, *extra],
        lookup_flags={**raw.lookup_flags, **flags},
    )


def _lookup_table(
    con: duckdb.DuckDBPyConnection,
    lk: Lookup,
    source: Source,
    base_dir: Path | None,
    tmp_dir: Path,
    cache: dict[tuple[str, str], tuple[str, dict[str, str]]],
) -> tuple[str, dict[str, str]]:
    path = Path(lk.file)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    key = (str(path), lk.object or "")
    if key in cache:
        return cache[key]
    if not path.exists():
        raise SourceError(
            f"lookup {lk.name!r} of source {source.name!r}: {path} not found; put {lk.file} next "
            "to the input files or give its path in file:"
        )
    lk_source = Source(
        name=f"{source.name}.lookups.{lk.name}",
        files=path.name,
        format=lk.format,
        object=lk.object,
        sheet=lk.sheet,
        encoding=lk.encoding,
        delimiter=lk.delimiter,
        outputs=[{"table": "customers", "columns": {"customer_id": "x"}}],
    )
    view = f"lookup_{len(cache)}"
    raw = open_source(con, lk_source, [path], view + "_raw", tmp_dir)
    _, right = lk.keys()
    if right not in raw.columns:
        raise MappingError(
            f"lookup {lk.name!r}: key column {right!r} is not in {path.name} (it has "
            f"{', '.join(raw.data_columns())}); fix key: in source {source.name!r}"
        )
    con.execute(
        f"CREATE OR REPLACE TABLE {view} AS SELECT CAST({ident(right)} AS VARCHAR) "
        f"AS __key, * FROM {raw.sql} WHERE {ident(right)} IS NOT NULL"
    )
    dup = con.execute(
        f"SELECT __key, count(*) FROM {view} GROUP BY 1 HAVING count(*) > 1 "
        "ORDER BY 2 DESC, 1 LIMIT 1"
    ).fetchone()
    if dup:
        raise SourceError(
            f"lookup {lk.name!r}: {path.name} has {dup[1]} rows for {right} = {dup[0]!r}; a "
            "lookup needs one row per key (de-duplicate the file or choose another key in key:)"
        )
    cols = {r[0]: r[1] for r in con.execute(f"DESCRIBE {view}").fetchall()}
    cache[key] = (view, cols)
    return cache[key]


# ---- SQL ------------------------------------------------------------------------------
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
    return _with_row(pa.Table.from_pandas(df, preserve_index=False))


def sql_fingerprint(table: pa.Table, source: Source) -> tuple[str, int]:
    """Hash of a query's result: the same rows again are the same source."""
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    data = sink.getvalue()
    h = hashlib.sha256((source.query or "").encode() + b"\0" + data)
    return "sha256:" + h.hexdigest(), len(data)


# ---- diagnosis ------------------------------------------------------------------------------
def diagnose_files(paths: list[Path], source: Source, engine_message: str = "") -> SourceError:
    """The most specific error among ``paths`` (the file DuckDB names, else each in turn)."""
    named = [p for p in paths if str(p) in engine_message or p.name in engine_message]
    generic = None
    for p in [*named, *[p for p in paths if p not in named]]:
        err = diagnose_text(p, source, engine_message, specific_only=True)
        if err is not None:
            return err
        generic = generic or p
    target = named[0] if named else (paths[0] if len(paths) == 1 else None)
    if target is not None:
        return diagnose_text(target, source, engine_message)  # type: ignore[return-value]
    return SourceError(
        f"{paths[0].name} .. {paths[-1].name}: cannot be read as "
        f"{source.format or 'csv'}: {first_line(engine_message)}"
    )


def diagnose_text(
    path: Path, source: Source, engine_message: str = "", specific_only: bool = False
) -> SourceError:
    """Re-read a delimited file that the engine refused and explain what is wrong, where."""
    enc = _codec(source.encoding)
    fmt = source.format_for(path)
    sep = source.sep(path) if fmt != "text" else None
    header: list[str] | None = None
    n_fields = None
    line_no = 0
    in_quote = False
    try:
        with _open_binary(path) as fh:
            line_enc = "utf-8" if enc.startswith(("utf-16", "utf-32")) else enc
            for line_no, raw in enumerate(_lines(fh, enc), start=1):
                if len(raw) > source.max_line_bytes:
                    col = _widest_field(raw, sep, header)
                    return SourceError(
                        f"{path.name} line {line_no}: the line is {len(raw):,} bytes long, over "
                        f"the limit of {source.max_line_bytes:,} (max_line_bytes){col}. If the "
                        "value is real, raise max_line_bytes: in source "
                        f"{source.name!r}; otherwise look for an unclosed quote before this line."
                    )
                try:
                    text = raw.decode(line_enc)
                except UnicodeDecodeError as e:
                    col = _field_at(raw, e.start, sep, header)
                    bad = raw[max(0, e.start - 8) : e.end + 8]
                    return SourceError(
                        f"{path.name} line {line_no}{col}: bytes {raw[e.start : e.end]!r} (in "
                        f"{bad!r}) are not valid {source.encoding}. The file mixes encodings or "
                        f"is not {source.encoding}: set encoding: (e.g. latin-1 or cp1252) in "
                        f"source {source.name!r}, or re-export the file as UTF-8."
                    )
                if fmt == "text" or in_quote:
                    in_quote = in_quote and text.count(source.quote) % 2 == 0
                    continue
                text = text.lstrip("\ufeff")
                if text.count(source.quote) % 2 == 1:
                    in_quote = True  # a quoted field runs over the line end; skip the check
                    continue
                fields = next(
                    csv.reader([text.rstrip("\r\n")], delimiter=sep or ",", quotechar=source.quote),
                    [],
                )
                if header is None and source.header:
                    header = fields
                    n_fields = len(source.column_names or fields)
                    continue
                if n_fields is None:
                    n_fields = len(source.column_names or fields)
                if fields and len(fields) != n_fields:
                    extra = (
                        f"; the line looks {_guess_sep(text, sep)!r}-delimited"
                        if _guess_sep(text, sep)
                        else ""
                    )
                    return SourceError(
                        f"{path.name} line {line_no}: {len(fields)} fields where the header has "
                        f"{n_fields}{extra}; check delimiter: {sep!r} and quote: in source "
                        f"{source.name!r}, or fix that line (a value with the delimiter in it "
                        "must be quoted)."
                    )
    except _BROKEN as e:
        return SourceError(
            f"{path.name}: the compressed file is truncated or corrupt after line {line_no:,} "
            f"({type(e).__name__}: {e}). Re-download or re-export it; nothing was ingested "
            "from it."
        )
    if specific_only:
        return None  # type: ignore[return-value]
    return SourceError(
        f"{path.name}: cannot be read as {fmt}: {first_line(engine_message)}. "
        f"Check format:, delimiter: and quote: in source {source.name!r}."
    )


def diagnose_json(path: Path, source: Source, engine_message: str) -> SourceError:
    """Name the first line of a JSON-lines file that is not a JSON object."""
    import json

    with _open_binary(path) as fh:
        for line_no, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                return SourceError(
                    f"{path.name} line {line_no}, column {getattr(e, 'colno', '?')}: not valid "
                    f"JSON ({e}); each line must be one JSON object. Fix that line or set "
                    f"format: in source {source.name!r}."
                )
            if not isinstance(obj, dict):
                return SourceError(
                    f"{path.name} line {line_no}: a JSON {type(obj).__name__}, not an object; "
                    "each line must be one JSON object with the source columns as keys."
                )
    return SourceError(f"{path.name}: not valid JSON lines: {first_line(engine_message)}")


def check_not_empty(path: Path) -> None:
    if not path.exists():
        raise SourceError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise SourceError(
            f"{path.name}: the file is empty (0 bytes); remove it from the input or re-export it"
        )


# ---- bytes and encodings ------------------------------------------------------------------
def _codec(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise MappingError(
            f"encoding {encoding!r} is unknown; use a Python codec name such as utf-8, latin-1, "
            "cp1252 or utf-16"
        ) from None


def _plain_utf8(path: Path, source: Source, tmp_dir: Path) -> Path:
    """``path`` itself when it is UTF-8, else a plain UTF-8 temporary copy.

    Python's codecs know every encoding a retailer's export may use; DuckDB knows three.
    """
    enc = _codec(source.encoding)
    if enc in ("utf-8", "ascii"):
        return path
    tmp_dir.mkdir(parents=True, exist_ok=True)
    out = tmp_dir / f"{len(list(tmp_dir.iterdir())):05d}-{path.name}.plain"
    try:
        with _open_binary(path) as src, open(out, "wb") as dst:
            reader = codecs.getreader(enc)(src, errors="strict")
            writer = codecs.getwriter("utf-8")(dst)
            first = True
            while chunk := reader.read(1 << 22):
                if first:
                    chunk = chunk.lstrip("\ufeff")
                    first = False
                writer.write(chunk)
    except (UnicodeDecodeError, *_BROKEN):
        out.unlink(missing_ok=True)
        raise diagnose_text(path, source) from None
    return out


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _open_binary(path: Path) -> io.BufferedIOBase:
    if _is_gzip(path):
        if _fast_gzip is not None:
            return _fast_gzip.open(path, "rb")  # type: ignore[return-value]
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _lines(fh: io.BufferedIOBase, enc: str) -> Iterator[bytes]:
    """Raw lines; for UTF-16/32 split on the encoded newline, not on a 0x0A byte."""
    if not enc.startswith(("utf-16", "utf-32")):
        yield from fh
        return
    data = fh.read()
    text = data.decode(enc, errors="replace")
    for line in text.splitlines(keepends=True):
        yield line.encode("utf-8")


def _guess_sep(text: str, sep: str | None) -> str | None:
    counts = {d: text.count(d) for d in (",", ";", "\t", "|") if d != sep}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] >= 2 else None


def _field_at(raw: bytes, offset: int, sep: str | None, header: list[str] | None) -> str:
    if sep is None:
        return ""
    idx = raw[:offset].count(sep.encode("utf-8"))
    name = header[idx] if header and idx < len(header) else f"field {idx + 1}"
    return f", column {name!r}"


def _widest_field(raw: bytes, sep: str | None, header: list[str] | None) -> str:
    parts = raw.split(sep.encode("utf-8")) if sep else raw.split()
    if not parts:
        return ""
    i = max(range(len(parts)), key=lambda j: len(parts[j]))
    name = header[i] if header and i < len(header) else f"field {i + 1}"
    return f"; column {name!r} holds {len(parts[i]):,} bytes"


# ---- Python readers -------------------------------------------------------------------------
def _read_excel(path: Path, source: Source) -> pa.Table:
    import pandas as pd

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
            df[c] = df[c].map(lambda v: None if v is None or v != v else str(v)).astype("string")
    return _with_row(pa.Table.from_pandas(df, preserve_index=False))


def _with_row(table: pa.Table) -> pa.Table:
    import numpy as np

    table = table.add_column(0, "_row", pa.array(np.arange(1, table.num_rows + 1, dtype="int64")))
    return table.add_column(1, "_file", pa.array(np.zeros(table.num_rows, dtype="int32")))


def _register_sql(con: duckdb.DuckDBPyConnection, view: str, sql: str, name: str) -> RawSource:
    con.execute(f"CREATE OR REPLACE VIEW {view} AS {sql}")
    cols = {r[0]: r[1] for r in con.execute(f"DESCRIBE {view}").fetchall()}
    return RawSource(name=name, sql=view, columns=cols, files=[name])


def _register_arrow(
    con: duckdb.DuckDBPyConnection, view: str, table: pa.Table, name: str
) -> RawSource:
    if "_row" not in table.column_names:
        table = _with_row(table)
    con.register(view + "_arrow", table)
    raw = _register_sql(con, view, f"SELECT * FROM {view}_arrow", name)
    raw.rows = table.num_rows
    return raw


def iter_lines(path: Path) -> Iterator[bytes]:
    """Raw lines of a (possibly gzip) file; used by tests and diagnostics."""
    with _open_binary(path) as fh:
        yield from fh
