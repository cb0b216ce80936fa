"""Pass 1 of an ingest: stage every source's rows, canonical and judged, as Arrow pieces.

Per group of files read together (a large file: per chunk, several at once) and per output
table, DuckDB runs the SQL of :mod:`personas.ingest.canonical` and hands its result over as
Arrow, written to an IPC file on disk: a *piece*. While the batches of a piece are written, a
:class:`PieceTally` counts its rows by input, verdict and flag and keeps the accepted rows'
hashes aside for the duplicate search, so neither needs a scan of the stage afterwards. Then
the pieces of each table are registered as one view (``st_<table>``) and the stage is checked
(empty files, columns that mostly fail to parse).
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import duckdb
import pyarrow as pa

from personas.diskspace import is_disk_full
from personas.errors import MappingError, SchemaError, SourceError
from personas.ingest.canonical import output_sql
from personas.ingest.context import Context, Input, PieceTally
from personas.ingest.diagnose import diagnose_files, diagnose_json
from personas.ingest.lookups import attach_lookups, prepare_lookups
from personas.ingest.mapping import Source
from personas.ingest.parsing import guess_hint
from personas.ingest.personal import SAMPLE_ROWS, find_personal, refusal
from personas.ingest.rawsource import RawSource
from personas.ingest.readers import open_source
from personas.ingest.textfiles import Chunk, chunk_source, header_names, split_file
from personas.sqltext import first_line, ident

#: Rows per Arrow batch handed from DuckDB to the stage (and read back at a time).
STAGE_BATCH_ROWS = 65_536
#: Accepted rows of one table up to which the duplicate hashes are kept aside while staging and
#: sorted in memory (8 bytes a row, twice while sorting: 800 MB at this size); a larger batch
#: stops keeping them and counts them in DuckDB, which spills to disk beyond its memory limit.
HASH_SORT_MAX_ROWS = 50_000_000


def stage_unit(con: duckdb.DuckDBPyConnection, unit: list[Input], ctx: Context, ui: int) -> None:
    """Stage a group of files read in one scan (or one non-text file, or one SQL result)."""
    first = unit[0]
    src = first.source
    paths = [i.path for i in unit if i.path is not None]
    raw = open_source(con, src, paths or None, f"raw_{ui}", ctx.stage / "tmp", first.table)
    raw = attach_lookups(
        con, raw, src, paths[0].parent if paths else None, ctx.stage / "tmp", ctx.lookup_cache
    )
    try:
        _check_personal(con, raw, src)
    except (duckdb.Error, EOFError) as e:  # the file cannot be read: say why, as staging would
        raise _pass1_error(e, src, paths, raw.name, src.outputs[0].table) from None
    fis = [i.fi for i in unit]
    for oi, out in enumerate(src.outputs):
        try:
            _stage_part(con, output_sql(raw, src, out, ctx, fis, oi), out.table, ctx)
        except (duckdb.Error, EOFError) as e:
            raise _pass1_error(e, src, paths, raw.name, out.table) from None


def _stage_part(
    con: duckdb.DuckDBPyConnection, sql: str, table: str, ctx: Context
) -> tuple[int, int]:
    """Materialise one piece of the stage of ``table`` as an Arrow IPC file; (id, rows).

    Arrow IPC is the cheapest stage there is: DuckDB hands over its result as Arrow (no
    encoding) and reads it back as a dataset, just the columns a query needs. A DuckDB table
    would cost about 150 bytes a row of memory (3 GB for 20M order lines) and staged Parquet
    twice the CPU. Several connections can write pieces at once.
    """
    with ctx.lock:
        pid = ctx.part_no
        ctx.part_no += 1
        ctx.parts.setdefault(table, []).append(pid)
    path = ctx.piece_path(pid)
    path.parent.mkdir(parents=True, exist_ok=True)
    reader = con.sql(f"SELECT CAST({pid} AS INTEGER) AS _pid, * FROM ({sql})").to_arrow_reader(
        STAGE_BATCH_ROWS
    )
    n = 0
    with ctx.lock:
        tally = PieceTally(ctx.flag_bits, HASH_SORT_MAX_ROWS - ctx.hashed.get(table, 0))
    try:
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, reader.schema) as w:
            for batch in reader:
                w.write_batch(batch)
                tally.add(batch)
                n += batch.num_rows
    except (pa.ArrowException, OSError) as e:
        # DuckDB's error surfaced through the Arrow stream: hand it on as DuckDB's
        raise duckdb.Error(str(e)) from None
    with ctx.lock:  # the room may have gone to pieces staged meanwhile
        tally.hashed = tally.hashes is not None and tally.accepted <= (
            HASH_SORT_MAX_ROWS - ctx.hashed.get(table, 0)
        )
        if tally.hashed:
            ctx.hashed[table] = ctx.hashed.get(table, 0) + tally.accepted
        ctx.tallies[pid] = tally
    tally.save_hashes(ctx.hash_path(pid))
    return pid, n


def _drop_piece(con: duckdb.DuckDBPyConnection, ctx: Context, pid: int) -> None:
    ctx.piece_path(pid).unlink(missing_ok=True)
    ctx.hash_path(pid).unlink(missing_ok=True)
    ctx.tallies.pop(pid, None)


def stage_split(con: duckdb.DuckDBPyConnection, inp: Input, ctx: Context, ui: int) -> None:
    """Stage one large delimited file as chunks parsed concurrently, one connection each.

    The file is inflated and cut into chunks on this thread while worker threads parse the
    chunks already written, each numbering its rows from 1; the row offset of every chunk is
    added when the staged rows are read (``ctx.offsets``). If DuckDB refuses a chunk (a quoted
    value spanning the cut, or a genuinely bad line), the chunks are dropped and the file is
    read in one scan, which either succeeds or names the bad line.
    """
    src = inp.source
    assert inp.path is not None
    names = header_names(inp.path, src)
    sep = src.sep(inp.path)
    tmp = ctx.stage / "tmp" / f"split-{ui}"
    base = inp.path.parent
    prepare_lookups(con, src, base, ctx.stage / "tmp", ctx.lookup_cache)
    workers = max(1, ctx.threads)
    todo: queue.Queue[Chunk | None] = queue.Queue(maxsize=workers + 1)
    errors: list[BaseException] = []
    refused: list[BaseException] = []
    staged: dict[int, tuple[int, list[int]]] = {}  # chunk -> (rows, staged pieces)
    chunks: list[Chunk] = []
    first_piece = ctx.part_no

    def work() -> None:
        cur = con.cursor()
        try:
            while (chunk := todo.get()) is not None:
                if errors or refused:
                    continue
                raw = chunk_source(src, chunk, names, sep)
                raw = attach_lookups(cur, raw, src, base, ctx.stage / "tmp", ctx.lookup_cache)
                pieces, rows = [], 0
                try:
                    for oi, out in enumerate(src.outputs):
                        sql = output_sql(raw, src, out, ctx, [inp.fi], oi)
                        name, n = _stage_part(cur, sql, out.table, ctx)
                        pieces.append(name)
                        rows = n if oi == 0 else rows
                except (duckdb.Error, EOFError) as e:
                    refused.append(e)
                finally:
                    chunk.path.unlink(missing_ok=True)  # here, not at the end: spreads the cost
                staged[chunk.index] = (rows, pieces)
        except BaseException as e:  # reported on the main thread
            errors.append(e)
        finally:
            cur.close()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    try:
        for chunk in split_file(inp.path, src, tmp):
            chunks.append(chunk)
            if chunk.index == 0:
                cur = con.cursor()
                try:
                    head = attach_lookups(
                        cur,
                        chunk_source(src, chunk, names, sep),
                        src,
                        base,
                        ctx.stage / "tmp",
                        ctx.lookup_cache,
                    )
                    _check_personal(cur, head, src, inp.name)
                except duckdb.Error:
                    pass  # the chunk cannot be parsed: the whole file is read and checked again
                finally:
                    cur.close()
            while not errors:
                try:
                    todo.put(chunk, timeout=0.5)
                    break
                except queue.Full:
                    continue
            if errors:
                break
    finally:
        for _ in threads:
            todo.put(None)
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    if refused or not chunks:
        # every piece numbered since this file started is this file's: drop them all
        with ctx.lock:
            for table in list(ctx.parts):
                mine = [p for p in ctx.parts[table] if p >= first_piece]
                for pid in mine:
                    _drop_piece(con, ctx, pid)
                ctx.parts[table] = [p for p in ctx.parts[table] if p not in mine]
                if not ctx.parts[table]:
                    del ctx.parts[table]
        stage_unit(
            con, [Input(inp.fi, src, inp.path, inp.name, inp.fingerprint, inp.bytes)], ctx, ui
        )
    else:
        offset = 0
        for index in sorted(staged):
            rows, pids = staged[index]
            for pid in pids:
                ctx.offsets[pid] = offset
            offset += rows
    for chunk in chunks:
        chunk.path.unlink(missing_ok=True)


def _pass1_error(
    e: BaseException, src: Source, paths: list[Path], name: str, table: str
) -> Exception:
    if is_disk_full(e):  # not the mapping's fault: the ingest reports it as such
        return e if isinstance(e, Exception) else RuntimeError(str(e))
    if paths and src.format_for(paths[0]) in ("csv", "tsv", "text") and _is_read_error(e):
        return diagnose_files(paths, src, str(e))
    if paths and src.format_for(paths[0]) == "jsonl" and _is_read_error(e):
        return diagnose_json(paths[0], src, str(e))  # a bad line after the keys' sample
    return SchemaError(
        f"{name}: the mapping for {table} could not be applied: {first_line(e)}; "
        f"check columns:, where: and expr: in source {src.name!r}"
    )


def stage_views(con: duckdb.DuckDBPyConnection, ctx: Context) -> None:
    """The staged tables; their views are made when a query first needs one (``stage_view``)."""
    ctx.tables = set(ctx.parts)


def stage_view(con: duckdb.DuckDBPyConnection, ctx: Context, table: str) -> str:
    """``st_<table>``: every staged piece, with the packed verdict unpacked into columns.

    The pieces of a table are registered as one Arrow dataset (not as tables): DuckDB reads
    just the columns a query needs, batch by batch, so the stage never has to fit in memory.
    Made on first use: a batch without rejected rows, repeated hashes or a lake to compare
    with needs none, and importing ``pyarrow.dataset`` imports pandas (0.3-1 CPU-s).
    """
    view = f"st_{table}"
    if f"{view}_pieces" not in ctx.datasets:
        register_pieces(con, ctx, view, [ctx.piece_path(pid) for pid in ctx.parts[table]])
    return view


def register_pieces(
    con: duckdb.DuckDBPyConnection,
    ctx: Context,
    view: str,
    files: list[Path],
    *,
    mapped: bool = False,
) -> None:
    """View ``view`` over staged Arrow files, with true row numbers and the verdict unpacked.

    Rows of a chunk of a big file are numbered from 1 in its piece; the chunk's offset is added
    here (looked up by the piece id ``_pid``). ``mapped``: one file, memory-mapped as a table
    rather than opened as a dataset (which holds no file open between queries, so a piece
    deleted once written frees its disk at once).
    """
    pieces: object
    if mapped:
        pieces = pa.ipc.open_file(pa.memory_map(str(files[0]))).read_all()
    else:
        import pyarrow.dataset as ds

        with pa.memory_map(str(files[0])) as f:  # all pieces share its schema: open no others
            piece_schema = pa.ipc.open_file(f).schema
        pieces = ds.dataset([str(p) for p in files], piece_schema, format="ipc")
    con.register(f"{view}_pieces", pieces)
    ctx.datasets[f"{view}_pieces"] = pieces  # registered per connection: for cursors too
    row = "_row"
    if any(ctx.offsets.values()):
        offsets = ", ".join(str(ctx.offsets.get(i, 0)) for i in range(ctx.part_no))
        row = f"_row + [{offsets}][_pid + 1]"
    sep = "chr(31)"
    con.execute(f"""CREATE OR REPLACE VIEW {view} AS
        SELECT * REPLACE ({row} AS _row),
               CASE WHEN _q IS NOT NULL THEN split_part(_q, {sep}, 1) END AS _rule,
               CASE WHEN _q IS NOT NULL THEN nullif(split_part(_q, {sep}, 2), '') END
                 AS _column,
               CASE WHEN _q IS NOT NULL THEN split_part(_q, {sep}, 3) END AS _raw,
               CASE WHEN _q IS NOT NULL THEN split_part(_q, {sep}, 4) END AS _reason
        FROM {view}_pieces""")


def _check_personal(
    con: duckdb.DuckDBPyConnection, raw: RawSource, source: Source, name: str | None = None
) -> None:
    """Refuse a source with a column that holds personal data but is not declared either way.

    Judged on the first :data:`SAMPLE_ROWS` rows of every text column (lookup columns too) and
    on every column's name (:mod:`personas.ingest.personal`).
    """
    declared = source.declared_personal() | set(source.not_personal)
    todo = [
        c
        for c in raw.columns
        if c not in ("_row", "_file") and not c.startswith("_lk_") and c not in declared
    ]
    if not todo:
        return
    text = [c for c in todo if raw.columns[c].upper() in ("VARCHAR", "JSON")]
    sample: dict[str, list[object]] = {c: [] for c in todo}
    first_file = 0
    if text:
        rows = con.execute(
            f"SELECT _file, {', '.join(ident(c) for c in text)} FROM {raw.sql} LIMIT {SAMPLE_ROWS}"
        ).fetchall()
        for i, c in enumerate(text, start=1):
            sample[c] = [r[i] for r in rows]
        first_file = rows[0][0] if rows else 0
    findings = find_personal(sample)
    if findings:
        if name is None:
            name = raw.files[first_file] if first_file < len(raw.files) else raw.name
        raise MappingError(refusal(name, source.name, findings))


def sum_tallies(ctx: Context) -> None:
    """``ctx.stats``: the staged pieces' counts by input and output, rule and flag."""
    for table in sorted(ctx.tables):
        for pid in ctx.parts[table]:
            for (fi, oi), by_verdict in ctx.tallies[pid].counts.items():
                st = ctx.stats.setdefault((fi, oi), {"candidates": 0, "quarantined": 0})
                for verdict, n in by_verdict.items():
                    if isinstance(verdict, str):  # flag:<name>
                        st[verdict] = st.get(verdict, 0) + n
                        continue
                    st["candidates"] += n
                    if verdict:
                        rule = f"rule:{ctx.rule_names[(fi, oi)][verdict - 1]}"
                        st["quarantined"] += n
                        st[rule] = st.get(rule, 0) + n


def check_stage(con: duckdb.DuckDBPyConnection, inputs: list[Input], ctx: Context) -> None:
    """Refuse files that are empty, or in which most values of a column do not parse."""
    counts = {k: (v["candidates"], v.get("rule:bad_value", 0)) for k, v in ctx.stats.items()}
    for inp in inputs:
        n = counts.get((inp.fi, 0), (0, 0))[0]
        if n == 0 and not inp.source.allow_empty:
            raise SourceError(
                f"{inp.name}: no data rows (a header only, or nothing after the header). If an "
                f"empty export is normal for this feed, set allow_empty: true in source "
                f"{inp.source.name!r}."
            )
        for oi, out in enumerate(inp.source.outputs):
            n, bad = counts.get((inp.fi, oi), (0, 0))
            if not bad or bad / n <= inp.source.max_bad_fraction:
                continue
            col, nbad, first = con.execute(
                f"SELECT _column, count(*), min(_row) FROM {stage_view(con, ctx, out.table)} "
                "WHERE _fi = ? AND "
                "_oi = ? AND _rule = 'bad_value' GROUP BY 1 ORDER BY 2 DESC LIMIT 1",
                [inp.fi, oi],
            ).fetchone()
            if nbad / n <= inp.source.max_bad_fraction:
                continue
            reason = con.execute(
                f"SELECT _reason FROM st_{out.table} WHERE _fi = ? AND _oi = ? AND _row = ? "
                "AND _rule = 'bad_value'",
                [inp.fi, oi, first],
            ).fetchone()[0]
            raws = [
                r[0]
                for r in con.execute(
                    f"SELECT regexp_extract(_reason, ': ''(.*)'' is not', 1) FROM st_{out.table} "
                    "WHERE _fi = ? AND _oi = ? AND _rule = 'bad_value' AND _column = ? LIMIT 200",
                    [inp.fi, oi, col],
                ).fetchall()
                if r[0]
            ]
            spec = out.columns.get(col)
            hint = guess_hint(con, raws, col, spec, inp.source)
            raise SchemaError(
                f"{inp.name} row {first}, {reason}. {nbad:,} of {n:,} rows ({nbad / n:.0%}) "
                f"fail, over max_bad_fraction {inp.source.max_bad_fraction:.0%}, so the file is "
                f"refused. {hint}"
            )


def _is_read_error(e: BaseException) -> bool:
    msg = str(e)
    return isinstance(e, EOFError) or any(
        k in msg
        for k in (
            "CSV Error",
            "GZIP",
            "gzip",
            "unicode",
            "Invalid Input Error",
            "IO Error",
            "Maximum line size",
            "encoded",
        )
    )
