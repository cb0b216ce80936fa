"""Delimited and whitespace-separated text files (csv, tsv, text) as DuckDB views.

Delimited text is read by DuckDB's CSV reader without sniffing: we read the header line
ourselves and pass the column names, which makes many small daily files cheap (sniffing cost
about 15 ms per file). Files of one source with the same header are read in one scan; row
numbers are counted per file from a cheap pre-count. A large file is cut into chunks
(:func:`split_file`) that the ingest parses concurrently; anything not UTF-8 is transcoded on
the way. When DuckDB refuses a file, :mod:`personas.ingest.diagnose` says why.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from personas.errors import SourceError
from personas.ingest.diagnose import diagnose_files, diagnose_text
from personas.ingest.files import BROKEN, codec, open_binary
from personas.ingest.mapping import Source
from personas.ingest.rawsource import RawSource, register_sql
from personas.sqltext import ident, literal, quote

# Delimited files at least this large (on disk) are split into chunks parsed in parallel.
SPLIT_BYTES = 32 << 20
CHUNK_BYTES = 64 << 20
READ_BYTES = 4 << 20
# Delimited files smaller than this are read together with others of the same layout.
GROUP_BYTES = 16 << 20
_TEXT_FORMATS = ("csv", "tsv", "text")


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
    enc = codec(source.encoding)
    try:
        with open_binary(path) as fh:
            text = io.TextIOWrapper(fh, encoding=enc, errors="strict", newline="").readline(
                source.max_line_bytes + 2
            )
    except UnicodeDecodeError:
        raise diagnose_text(path, source) from None
    except BROKEN as e:
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


def open_delimited(
    con: duckdb.DuckDBPyConnection, source: Source, paths: list[Path], view: str, tmp_dir: Path
) -> RawSource:
    """Delimited files (csv, tsv) of one header, read in one scan with the strict options."""
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


def open_whitespace(
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
    out = register_sql(con, view, f"SELECT _row, _file, {', '.join(cells)} FROM ({body})", raw.name)
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
        except (duckdb.Error, *BROKEN) as e:
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
    raw = register_sql(
        con, view, sql, paths[0].name if len(paths) == 1 else f"{paths[0].name} .. {paths[-1].name}"
    )
    raw.files = [p.name for p in paths]
    raw.counts = counts
    return raw


def _plain_utf8(path: Path, source: Source, tmp_dir: Path) -> Path:
    """``path`` itself when it is UTF-8, else a plain UTF-8 temporary copy.

    Python's codecs know every encoding a retailer's export may use; DuckDB knows three.
    """
    enc = codec(source.encoding)
    if enc in ("utf-8", "ascii"):
        return path
    tmp_dir.mkdir(parents=True, exist_ok=True)
    out = tmp_dir / f"{len(list(tmp_dir.iterdir())):05d}-{path.name}.plain"
    try:
        with open_binary(path) as src, open(out, "wb") as dst:
            reader = codecs.getreader(enc)(src, errors="strict")
            writer = codecs.getwriter("utf-8")(dst)
            first = True
            while chunk := reader.read(1 << 22):
                if first:
                    chunk = chunk.lstrip("\ufeff")
                    first = False
                writer.write(chunk)
    except (UnicodeDecodeError, *BROKEN):
        out.unlink(missing_ok=True)
        raise diagnose_text(path, source) from None
    return out


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
    enc = codec(source.encoding)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    index, size = 0, 0
    out: Any = None
    try:
        with open_binary(path) as raw_fh:
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
    except (UnicodeDecodeError, *BROKEN):
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
