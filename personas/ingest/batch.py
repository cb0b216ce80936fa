"""Ingest source files into the lake: map, clean, quarantine, de-duplicate, commit atomically.

Every input row ends in exactly one place: the lake (accepted), ``quarantine/`` with the rule
that rejected it (quarantined), or ``quarantine/`` as an exact duplicate of a row already kept
(duplicates). ``rows_in = accepted + quarantined + duplicates`` is checked for every source before
the batch commits; a batch that does not balance is not committed.

The work runs in DuckDB and pyarrow in three passes, with memory bounded by ``memory_limit``
(DuckDB spills to the batch's staging folder):

1. per group of files read together (a large file: per chunk, several at once), and per output
   table: parse, treat personal data, apply the named rules, and stage the canonical values
   with the verdicts as Arrow IPC pieces on disk;
2. find exact duplicates, within the batch and against rows already in the lake (only the
   partitions the batch touches are read: equal rows have equal timestamps);
3. write rejected rows into quarantine, then accepted rows into Hive partitions (pyarrow, a
   few writer threads, each deleting a stage piece once written), then commit through the
   manifest (:meth:`personas.lake.Lake.commit`).

Where the time goes, and the choices it led to, is in ``docs/ingestion.md`` (Speed).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from personas import lake as lake_mod
from personas import schema
from personas.errors import MappingError, SchemaError, SourceError
from personas.ingest.cleaning import RuleSet, rules_for
from personas.ingest.mapping import PII_NAME, Mapping, Output, Source, load_mapping
from personas.ingest.parsing import FieldSQL, field_sql, guess_hint
from personas.ingest.readers import (
    Chunk,
    RawSource,
    attach_lookups,
    chunk_source,
    diagnose_files,
    fingerprint,
    group_key,
    header_names,
    open_source,
    prepare_lookups,
    read_sql_table,
    split_file,
    splittable,
    sql_fingerprint,
)
from personas.lake import Batch, Lake, SourceRecord, pause_point
from personas.sqltext import first_line, ident, quote

Progress = Callable[[str, int, int], None]

#: Default DuckDB memory limit of an ingest; the stage spills to disk beyond it.
DEFAULT_MEMORY_LIMIT = "1GB"
#: Rows per Arrow batch handed from DuckDB to the stage (and read back at a time).
STAGE_BATCH_ROWS = 65_536
#: Rows the lake writer reads from the stage at a time.
WRITE_BATCH_ROWS = 500_000
#: Rows per Parquet row group written into the lake (per month, per writer) ...
ROW_GROUP_ROWS = 122_880
#: ... and rows a writer holds across all months before it writes the biggest group early.
BUFFER_ROWS = 300_000
#: Accepted rows of one table up to which the duplicate hashes are kept aside while staging and
#: sorted in memory (8 bytes a row, twice while sorting: 800 MB at this size); a larger batch
#: stops keeping them and counts them in DuckDB, which spills to disk beyond its memory limit.
HASH_SORT_MAX_ROWS = 50_000_000


@dataclass
class IngestReport:
    """What one ``ingest`` call did, source by source."""

    lake: str
    batch_id: str | None
    sources: list[SourceRecord] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    ignored: list[str] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        keys = ("rows_in", "accepted", "quarantined", "duplicates")
        return {k: sum(getattr(s, k) for s in self.sources) for k in keys}

    def rules(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.sources:
            for k, v in {**s.rules, **s.flags}.items():
                out[k] = out.get(k, 0) + v
        return dict(sorted(out.items()))

    def summary(self) -> str:
        """Human summary; the first line is the row accounting users look for."""
        t = self.totals()
        lines = [
            f"input {t['rows_in']:,} = accepted {t['accepted']:,} + quarantined "
            f"{t['quarantined']:,} + duplicates {t['duplicates']:,}  "
            f"({len(self.sources)} source(s), {self.seconds:.1f} s, batch {self.batch_id})"
        ]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} source(s) already in the lake")
        if self.ignored:
            lines.append(
                f"ignored {len(self.ignored)} file(s) that are not data: "
                f"{', '.join(self.ignored[:5])}{' ...' if len(self.ignored) > 5 else ''}"
            )
        for k, v in self.rules().items():
            kind = "flag" if k in schema.FLAGS or k.startswith("unmatched_") else "rule"
            lines.append(f"  {kind} {k:<22} {v:>12,}")
        by_table: dict[str, int] = {}
        for s in self.sources:
            for key, o in s.outputs.items():
                tname = key.split("#")[0]
                by_table[tname] = by_table.get(tname, 0) + o.get("accepted", 0)
        for tname, n in sorted(by_table.items()):
            lines.append(f"  -> {tname:<19} {n:>12,} rows accepted")
        return "\n".join(lines)


@dataclass
class _Input:
    """One file (or SQL query) to ingest; ``fi`` is its index in the batch."""

    fi: int
    source: Source
    path: Path | None
    name: str
    fingerprint: str
    bytes: int
    table: pa.Table | None = None  # pre-read Arrow table for SQL sources


@dataclass
class _Ctx:
    batch_id: str
    now: datetime
    key: str
    stage: Path
    threads: int = 1
    flag_bits: dict[str, int] = field(default_factory=dict)
    tables: set[str] = field(default_factory=set)
    parts: dict[str, list[int]] = field(default_factory=dict)  # table -> staged piece ids
    stats: dict[tuple[int, int], dict[str, int]] = field(default_factory=dict)
    rule_names: dict[tuple[int, int], list[str]] = field(default_factory=dict)  # by _ck - 1
    tallies: dict[int, _PieceTally] = field(default_factory=dict)  # piece -> its counts
    offsets: dict[int, int] = field(default_factory=dict)  # piece -> rows before its chunk
    hashed: dict[str, int] = field(default_factory=dict)  # table -> hashes kept aside so far
    part_no: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    lookup_cache: dict = field(default_factory=dict)
    stage_read: threading.Event = field(default_factory=threading.Event)  # quarantine written
    written_pieces: list[int] = field(default_factory=list)  # kept until then
    datasets: dict[str, object] = field(default_factory=dict)  # registered stage views


def ingest(
    paths: Sequence[str | Path],
    mapping: Mapping | str | Path,
    lake: Lake | str | Path,
    *,
    progress: Progress | None = None,
    now: datetime | None = None,
    include_sql: bool = True,
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
    threads: int | None = None,
) -> IngestReport:
    """Ingest ``paths`` (and the mapping's SQL sources) into ``lake`` as one atomic batch.

    Files already in the lake (same content hash) are skipped and rows equal to rows already in
    the lake are counted as duplicates, so re-running is a no-op. Folders are expanded; files the
    mapping ignores (read-mes, checksums, lookup files) are listed in ``report.ignored``.

    Parameters
    ----------
    paths : files or folders
    mapping : a :class:`Mapping`, a mapping YAML path or a shipped mapping name
    lake : the lake folder (created if needed)
    progress : called as ``progress(step, done, total)``
    now : the batch time (``ingested_at``; also the reference of the impossible_date rule)
    include_sql : also run the mapping's ``format: sql`` sources
    memory_limit, threads : DuckDB resource limits of this ingest
    """
    t0 = time.perf_counter()
    mapping = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
    lake = lake if isinstance(lake, Lake) else Lake(lake)
    now = now or datetime.now(UTC)
    files, ignored = _expand(paths, mapping)
    key = mapping.pii_key()
    with lake.lock():
        lake.recover()
        known = lake.fingerprints()
        batch_id = lake_mod.new_batch_id()
        report = IngestReport(lake=str(lake.root), batch_id=None, ignored=ignored)
        inputs = _plan(files, mapping, known, report, include_sql)
        if not inputs:
            report.seconds = time.perf_counter() - t0
            return report
        needing = sorted({i.source.name for i in inputs if _needs_key(i.source)})
        if needing and not key:
            raise MappingError(
                f"source(s) {', '.join(needing)} of mapping {mapping.name!r} hash personal data "
                f"but no key is set: export {mapping.pii_key_env}=<a long secret> (keep it the "
                "same across ingests so the same person gets the same pseudonym)"
            )
        stage = lake.staging(batch_id)
        con = lake_mod.connect(
            memory_limit=memory_limit, threads=threads, temp_directory=str(stage / "spill")
        )
        ctx = _Ctx(
            batch_id=batch_id,
            now=now,
            key=key or "",
            stage=stage,
            threads=threads or os.cpu_count() or 1,
        )
        try:
            records = _run(con, inputs, ctx, lake, progress)
            for r in records:
                if not r.balanced():  # pragma: no cover - an internal invariant
                    raise RuntimeError(f"row accounting does not balance for {r.source}: {r}")
            _note("write", progress)
            files_out = _write(con, inputs, ctx)
            con.close()
            batch = Batch(
                batch_id=batch_id,
                committed_at=now.isoformat(),
                mapping=mapping.name,
                mapping_hash=mapping.text_hash,
                schema_version=schema.SCHEMA_VERSION,
                sources=records,
                files={},
                seconds=round(time.perf_counter() - t0, 3),
            )
            lake.commit(batch, files_out)
        except BaseException:
            con.close()
            lake.recover()
            raise
    report.batch_id = batch_id
    report.sources = records
    report.seconds = time.perf_counter() - t0
    return report


# ---- planning -------------------------------------------------------------------------------
def _expand(paths: Sequence[str | Path], mapping: Mapping) -> tuple[list[Path], list[str]]:
    out: list[Path] = []
    ignored: list[str] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for x in sorted(p.rglob("*")):
                if not x.is_file():
                    continue
                if mapping.ignored(x):
                    ignored.append(x.name)
                else:
                    out.append(x)
        elif p.exists():
            if mapping.ignored(p):
                ignored.append(p.name)
            else:
                out.append(p)
        else:
            raise SourceError(f"{p}: file not found")
    return sorted(dict.fromkeys(out), key=lambda x: (x.name, str(x))), ignored


def _plan(
    files: list[Path],
    mapping: Mapping,
    known: dict[str, str],
    report: IngestReport,
    include_sql: bool,
) -> list[_Input]:
    seen: dict[str, str] = {}
    inputs: list[_Input] = []
    sources = [(p, mapping.source_for(p)) for p in files]  # fail fast on unmatched files
    for p, src in sources:
        fp, size = fingerprint(p)
        if fp in known or fp in seen:
            report.skipped.append((p.name, known.get(fp) or f"same content as {seen[fp]}"))
            continue
        seen[fp] = p.name
        inputs.append(_Input(len(inputs), src, p, p.name, fp, size))
    if include_sql:
        for src in mapping.sources:
            if src.format != "sql":
                continue
            table = read_sql_table(src)
            fp, size = sql_fingerprint(table, src)
            if fp in known:
                report.skipped.append((src.name, known[fp]))
                continue
            inputs.append(_Input(len(inputs), src, None, src.name, fp, size, table))
    return inputs


def _needs_key(source: Source) -> bool:
    return "hash" in source.personal_data.values() or any(
        c.pseudonymise for o in source.outputs for c in o.columns.values()
    )


def _units(inputs: list[_Input]) -> list[list[_Input]]:
    """Inputs read in one scan: small delimited files of one source with the same header."""
    groups: dict[tuple, list[_Input]] = {}
    units: list[list[_Input]] = []
    for inp in inputs:
        k = group_key(inp.source, inp.path) if inp.path is not None else None
        if k is None:
            units.append([inp])
            continue
        g = groups.get(k)
        if g is None or len(g) >= 512:
            g = groups[k] = []
            units.append(g)
        g.append(inp)
    return units


def _note(step: str, progress: Progress | None, done: int = 0, total: int = 0) -> None:
    if progress:
        progress(step, done, total)


# ---- pass 1: parse, treat personal data, apply rules ---------------------------------------
def _run(
    con: duckdb.DuckDBPyConnection,
    inputs: list[_Input],
    ctx: _Ctx,
    lake: Lake,
    progress: Progress | None,
) -> list[SourceRecord]:
    con.execute("CREATE TABLE _files (_fi INTEGER, name VARCHAR)")
    con.executemany("INSERT INTO _files VALUES (?, ?)", [(i.fi, i.name) for i in inputs])
    seconds: dict[int, float] = {}
    units = _units(inputs)
    done = 0
    for ui, unit in enumerate(units):
        _note("read", progress, done, len(inputs))
        t = time.perf_counter()
        inp = unit[0]
        if len(unit) == 1 and inp.path is not None and splittable(inp.source, inp.path):
            _stage_split(con, inp, ctx, ui)
        else:
            _stage_unit(con, unit, ctx, ui)
        share = (time.perf_counter() - t) / len(unit)
        for inp in unit:
            seconds[inp.fi] = round(share, 4)
        done += len(unit)
    _note("read", progress, len(inputs), len(inputs))
    _stage_views(con, ctx)
    pause_point("staged")
    _sum_tallies(ctx)
    _check_stage(con, inputs, ctx)
    _note("deduplicate", progress)
    _find_duplicates(con, ctx, lake)
    return _account(con, inputs, ctx, seconds)


def _stage_unit(con: duckdb.DuckDBPyConnection, unit: list[_Input], ctx: _Ctx, ui: int) -> None:
    """Stage a group of files read in one scan (or one non-text file, or one SQL result)."""
    first = unit[0]
    src = first.source
    paths = [i.path for i in unit if i.path is not None]
    raw = open_source(con, src, paths or None, f"raw_{ui}", ctx.stage / "tmp", first.table)
    raw = attach_lookups(
        con, raw, src, paths[0].parent if paths else None, ctx.stage / "tmp", ctx.lookup_cache
    )
    _check_personal(raw, src)
    fis = [i.fi for i in unit]
    for oi, out in enumerate(src.outputs):
        try:
            _stage_part(con, output_sql(raw, src, out, ctx, fis, oi), out.table, ctx)
        except (duckdb.Error, EOFError) as e:
            raise _pass1_error(e, src, paths, raw.name, out.table) from None


def _stage_part(con: duckdb.DuckDBPyConnection, sql: str, table: str, ctx: _Ctx) -> tuple[int, int]:
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
    path = _piece_path(ctx, pid)
    path.parent.mkdir(parents=True, exist_ok=True)
    reader = con.sql(f"SELECT CAST({pid} AS INTEGER) AS _pid, * FROM ({sql})").to_arrow_reader(
        STAGE_BATCH_ROWS
    )
    n = 0
    with ctx.lock:
        tally = _PieceTally(ctx.flag_bits, HASH_SORT_MAX_ROWS - ctx.hashed.get(table, 0))
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
    tally.save_hashes(_hash_path(ctx, pid))
    return pid, n


class _PieceTally:
    """One staged piece's rows by input, output, rule and flag, and its accepted rows' hashes.

    Gathered from the Arrow batches while they are written: the manifest's counts then need
    no scan of the stage (1.2 CPU-s per 20M lines), and the hashes of the duplicate search are
    kept aside here instead of read back from the stage afterwards.
    ``counts`` maps (input, output) to rows by verdict (``_ck``: 0 accepted, else the index of
    the failing check) and accepted rows by ``flag:<name>``. The hashes are kept while the
    table's accepted rows stay within ``room`` (what :data:`HASH_SORT_MAX_ROWS` leaves);
    ``hashed`` says whether they were written.
    """

    def __init__(self, flag_bits: dict[str, int], room: int):
        self.flag_bits = dict(flag_bits)
        self.room = room
        self.counts: dict[tuple[int, int], dict[int | str, int]] = {}
        self.accepted = 0
        self.hashes: list[np.ndarray] | None = []  # None: no room left
        self.hashed = False

    def add(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        ck = pc.fill_null(batch["_ck"], 0).to_numpy()
        fi = batch["_fi"].to_numpy()
        flags = batch["_flags"].to_numpy()
        oi = int(batch["_oi"][0].as_py())
        accepted = ck == 0
        one = fi[0] == fi[-1] and bool((fi == fi[0]).all())
        for f in [fi[0]] if one else np.unique(fi):
            mine = slice(None) if one else fi == f
            counts = self.counts.setdefault((int(f), oi), {})
            for verdict in np.flatnonzero(verdicts := np.bincount(ck[mine])):
                counts[int(verdict)] = counts.get(int(verdict), 0) + int(verdicts[verdict])
            kept = flags[mine][accepted[mine]]
            for name, bit in self.flag_bits.items():
                if flagged := int(np.count_nonzero(kept & (1 << bit))):
                    counts[f"flag:{name}"] = counts.get(f"flag:{name}", 0) + flagged
        self.accepted += int(np.count_nonzero(accepted))
        if self.hashes is not None and self.accepted > self.room:
            self.hashes = None  # the batch's hashes are then found in DuckDB
        if self.hashes is not None:
            self.hashes.append(batch["_hash"].to_numpy()[accepted])

    def save_hashes(self, path: Path) -> None:
        """Write the hashes of the accepted rows (unsorted: see :func:`_accepted_hashes`)."""
        if self.hashed and self.hashes is not None:
            np.save(path, np.concatenate(self.hashes) if self.hashes else np.empty(0, np.uint64))
        self.hashes = None


def _piece_path(ctx: _Ctx, pid: int) -> Path:
    return ctx.stage / "pieces" / f"piece-{pid:05d}.arrow"


def _hash_path(ctx: _Ctx, pid: int) -> Path:
    return ctx.stage / "pieces" / f"piece-{pid:05d}.hashes.npy"


def _drop_piece(con: duckdb.DuckDBPyConnection, ctx: _Ctx, pid: int) -> None:
    _piece_path(ctx, pid).unlink(missing_ok=True)
    _hash_path(ctx, pid).unlink(missing_ok=True)
    ctx.tallies.pop(pid, None)


def _stage_split(con: duckdb.DuckDBPyConnection, inp: _Input, ctx: _Ctx, ui: int) -> None:
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
                _check_personal(chunk_source(src, chunk, names, sep), src)
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
        _stage_unit(
            con, [_Input(inp.fi, src, inp.path, inp.name, inp.fingerprint, inp.bytes)], ctx, ui
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
    if paths and src.format_for(paths[0]) in ("csv", "tsv", "text") and _is_read_error(e):
        return diagnose_files(paths, src, str(e))
    return SchemaError(
        f"{name}: the mapping for {table} could not be applied: {first_line(e)}; "
        f"check columns:, where: and expr: in source {src.name!r}"
    )


def _stage_views(con: duckdb.DuckDBPyConnection, ctx: _Ctx) -> None:
    """``st_<table>``: every staged piece, with the packed verdict unpacked into columns.

    The pieces of a table are registered as one Arrow dataset (not as tables): DuckDB reads
    just the columns a query needs, batch by batch, so the stage never has to fit in memory.
    """
    for table, pids in ctx.parts.items():
        _register_pieces(con, ctx, f"st_{table}", [_piece_path(ctx, pid) for pid in pids])
    ctx.tables = set(ctx.parts)


def _register_pieces(
    con: duckdb.DuckDBPyConnection, ctx: _Ctx, view: str, files: list[Path]
) -> None:
    """View ``view`` over staged Arrow files, with true row numbers and the verdict unpacked.

    Rows of a chunk of a big file are numbered from 1 in its piece; the chunk's offset is added
    here (looked up by the piece id ``_pid``).
    """
    import pyarrow.dataset as ds

    with pa.memory_map(str(files[0])) as f:  # all pieces of a table share it: open no others
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


# Columns hashed to find duplicate candidates (all canonical columns are then compared).
_HASH_KEYS = {
    "transactions": ("customer_id", "order_id", "ts", "product_id", "quantity", "amount"),
    "customers": ("customer_id",),
    "events": ("customer_id", "ts", "event_type", "session_id"),
    "feedback": ("customer_id", "ts", "kind", "score"),
}


def output_sql(
    raw: RawSource, source: Source, out: Output, ctx: _Ctx, fis: list[int], oi: int
) -> str:
    """SQL producing the stage rows of one output: canonical columns + rule verdicts."""
    fields = schema.fields(out.table)
    ftypes = {f.name: schema.duckdb_type(f.type) for f in fields}
    exprs: dict[str, FieldSQL] = {}
    for fname, spec in out.columns.items():
        exprs[fname] = field_sql(fname, spec, ftypes[fname], raw, source, ctx.key)
    # layer 1: personal data treatment (drop / hash) before anything else sees the row
    data_cols = raw.data_columns()
    keep = [c for c in data_cols if source.personal_data.get(c) != "drop"]
    other = [c for c in raw.columns if c not in data_cols]  # _row, _file, lookups
    pii_cols = [ident(c) for c in other]
    for c in keep:
        if source.personal_data.get(c) == "hash":
            pii_cols.append(
                f"sha256('{quote(ctx.key)}' || CAST({ident(c)} AS VARCHAR)) AS {ident(c)}"
            )
        else:
            pii_cols.append(ident(c))
    where = f"WHERE ({out.where})" if out.where and oi > 0 else ""
    layer1 = f"SELECT {', '.join(pii_cols)} FROM {raw.sql} {where}"
    # layer 2: canonical values (c_<name>)
    cols2 = []
    for f in fields:
        if f.name in exprs:
            cols2.append(f"{exprs[f.name].value} AS {ident('c_' + f.name)}")
        elif f.name != "is_outlier":
            cols2.append(f"CAST(NULL AS {ftypes[f.name]}) AS {ident('c_' + f.name)}")
    if out.attributes is not None:
        used = {e.column for e in exprs.values() if e.column}
        attr_cols = (
            [c for c in keep if c not in used and c not in source.personal_data]
            if out.attributes == "rest"
            else list(out.attributes)
        )
        for c in attr_cols:
            if c not in raw.columns:
                raise SchemaError(
                    f"{raw.name}: attributes: column {c!r} is not in the file (it has "
                    f"{', '.join(data_cols)}); fix attributes: in source {source.name!r}"
                )
            if source.personal_data.get(c) == "drop":
                raise MappingError(
                    f"source {source.name!r}: {c!r} is dropped as personal data "
                    "and cannot also be kept in attributes:"
                )
        if attr_cols:
            pack = ", ".join(f"{ident(c)} := {ident(c)}" for c in attr_cols)
            cols2 = [c for c in cols2 if not c.endswith(ident("c_attributes"))]
            cols2.append(f"CAST(to_json(struct_pack({pack})) AS VARCHAR) AS c_attributes")
    layer2 = f"SELECT *, {', '.join(cols2)} FROM l1"
    # layer 3: derived defaults; layer 4: the verdict of the rules and the outlier flag
    rules = rules_for(
        out,
        exprs,
        ctx.now,
        primary_where=out.where if oi == 0 else None,
        lookup_flags=raw.lookup_flags,
    )
    with ctx.lock:  # what the verdict _ck of these rows means, for the counts by rule
        for fi in fis:
            ctx.rule_names[(fi, oi)] = [c.rule for c in rules.checks]
    layer3 = (
        f"SELECT * REPLACE ({', '.join(rules.derive)}) FROM l2"
        if rules.derive
        else "SELECT * FROM l2"
    )
    layer4 = (
        f"SELECT *, {rules.verdict()} AS _ck, coalesce({rules.outlier}, false) AS _outlier FROM l3"
    )
    raw_pack = ", ".join(f"{ident(c)} := {ident(c)}" for c in keep) or "_row := _row"
    canon = [f.name for f in fields if f.name != "is_outlier"]
    fi_sql = str(fis[0]) if len(fis) == 1 else f"[{', '.join(map(str, fis))}][_file + 1]"
    select = [
        f"CAST({fi_sql} AS INTEGER) AS _fi",
        f"CAST({oi} AS SMALLINT) AS _oi",
        "CAST(_row AS BIGINT) AS _row",
    ]
    select += [f"CAST({ident('c_' + n)} AS {ftypes[n]}) AS {ident(n)}" for n in canon]
    if out.table == "transactions":
        select.append("_outlier AS is_outlier")
    # rule, column, source values and reason of a rejected row, packed into one column: an
    # accepted row then costs one NULL, not four
    verdict = (
        f"{rules.by_verdict('rule')} || chr(31) || coalesce({rules.by_verdict('column')}, "
        f"'') || chr(31) || CAST(to_json(struct_pack({raw_pack})) AS VARCHAR) || chr(31) "
        f"|| replace({rules.by_verdict('reason')}, chr(31), ' ')"
    )
    hashed = [n for n in _HASH_KEYS[out.table] if n in canon]
    select += [
        f"CASE WHEN _ck IS NOT NULL THEN {verdict} END AS _q",
        "_ck",
        f"hash({', '.join(ident('c_' + n) for n in hashed)}) AS _hash",
        f"{_flag_bits(rules, ctx)} AS _flags",
    ]
    return (
        f"WITH l1 AS ({layer1}), l2 AS ({layer2}), l3 AS ({layer3}), l4 AS ({layer4}) "
        f"SELECT {', '.join(select)} FROM l4"
    )


def _flag_bits(rules: RuleSet, ctx: _Ctx) -> str:
    parts = []
    for name, cond in rules.flags.items():
        cond = "_outlier" if cond == rules.outlier else cond
        with ctx.lock:
            bit = ctx.flag_bits.setdefault(name, len(ctx.flag_bits))
        if bit >= 32:
            raise MappingError("more than 32 different flags in one batch; ingest in parts")
        parts.append(f"(CASE WHEN {cond} THEN {1 << bit} ELSE 0 END)")
    return f"CAST({' + '.join(parts) if parts else '0'} AS UINTEGER)"


def _check_personal(raw: RawSource, source: Source) -> None:
    """Refuse a source whose columns look personal but are not declared either way."""
    suspicious = [
        c
        for c in raw.data_columns()
        if PII_NAME.search(c)
        and c not in source.personal_data
        and c not in set(source.not_personal)
    ]
    if suspicious:
        raise MappingError(
            f"{raw.name}: column(s) {', '.join(repr(c) for c in suspicious)} look like personal "
            f"data; declare each under personal_data: in source {source.name!r} as drop or "
            "hash (or, if it is not personal, list it under not_personal:)"
        )


def _sum_tallies(ctx: _Ctx) -> None:
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


def _check_stage(con: duckdb.DuckDBPyConnection, inputs: list[_Input], ctx: _Ctx) -> None:
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
                f"SELECT _column, count(*), min(_row) FROM st_{out.table} WHERE _fi = ? AND "
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


# ---- pass 2: exact duplicates --------------------------------------------------------------
def _find_duplicates(con: duckdb.DuckDBPyConnection, ctx: _Ctx, lake: Lake) -> None:
    """Create ``dup_<table>(_fi, _oi, _row, _dup_of, _raw, _flags)`` for every stage table.

    Rows whose hash (of a few key columns) occurs twice in the batch, or also in the lake, are
    candidates; among them, rows equal in every canonical column are duplicates of the first
    one by file and row (or of the lake's row). ``_raw`` keeps the duplicate's canonical values
    for the quarantine. Only the hashes of all rows are compared; the canonical columns are read
    for the candidates alone (a few per cent of rows, usually), which made this pass 3x faster.
    """
    con.execute("SET preserve_insertion_order = false")
    for table in sorted(ctx.tables):
        canon = [f.name for f in schema.fields(table) if f.name != "is_outlier"]
        part = ", ".join(ident(c) for c in canon)
        hashed = ", ".join(ident(c) for c in _HASH_KEYS[table])
        pack = ", ".join(f"{ident(c)} := r.{ident(c)}" for c in canon)
        pack_a = ", ".join(f"{ident(c)} := a.{ident(c)}" for c in canon)
        files = _lake_files_for(con, lake, table)
        lst = ", ".join(f"'{quote(p)}'" for p in files)
        lake_rows = f"read_parquet([{lst}], union_by_name = true)"
        lake_hashes = f"SELECT hash({hashed}) AS _hash FROM {lake_rows}" if files else None
        hashes = _repeated_hashes(con, ctx, table, lake_hashes)
        _stage_candidates(con, ctx, table, hashes)
        con.execute(f"""
            CREATE TABLE dup_{table} AS
            WITH r AS (SELECT *,
                         row_number() OVER w AS rn,
                         first_value(_fi) OVER w AS first_fi,
                         first_value(_row) OVER w AS first_row
                  FROM cand_{table}
                  WINDOW w AS (PARTITION BY _hash, {part} ORDER BY _fi, _oi, _row))
            SELECT r._fi, r._oi, r._row,
                   'exact duplicate of ' || f.name || ' row ' || r.first_row AS _dup_of,
                   CAST(to_json(struct_pack({pack})) AS VARCHAR) AS _raw, r._flags
            FROM r JOIN _files f ON f._fi = r.first_fi WHERE rn > 1""")
        if not files:
            continue
        eq = " AND ".join(f"a.{ident(c)} IS NOT DISTINCT FROM b.{ident(c)}" for c in canon)
        con.execute(f"""
            INSERT INTO dup_{table}
            SELECT DISTINCT ON (a._fi, a._oi, a._row) a._fi, a._oi, a._row,
                   'exact duplicate of ' || b.source || ' row ' || b.source_row ||
                   ' (already in the lake, batch ' || b.batch_id || ')',
                   CAST(to_json(struct_pack({pack_a})) AS VARCHAR), a._flags
            FROM cand_{table} a
            JOIN (SELECT hash({hashed}) AS _hash, {part}, source, source_row, batch_id
                  FROM {lake_rows}) b
              ON a._hash = b._hash AND {eq}
            ANTI JOIN dup_{table} d ON d._fi = a._fi AND d._oi = a._oi AND d._row = a._row
            ORDER BY a._fi, a._oi, a._row""")


def _repeated_hashes(
    con: duckdb.DuckDBPyConnection, ctx: _Ctx, table: str, lake_hashes: str | None
) -> np.ndarray:
    """Hashes of accepted staged rows that occur twice or more in the batch, or in the lake.

    ``lake_hashes`` is a query of the hashes of the lake rows the batch could repeat (None:
    there are none).
    """
    if not all(ctx.tallies[pid].hashed for pid in ctx.parts[table]):  # too many to sort
        return _repeated_hashes_sql(con, table, lake_hashes)
    ordered = _accepted_hashes(ctx, table)
    if not len(ordered):  # nothing accepted: nothing can repeat
        return ordered
    same = ordered[1:] == ordered[:-1]
    hashes = np.unique(ordered[1:][same])
    if lake_hashes is not None:
        distinct = pa.table({"_hash": ordered[~np.r_[False, same]]})
        del ordered, same
        con.register(f"_batch_hashes_{table}", distinct)
        try:
            in_lake = con.sql(
                f"SELECT _hash FROM _batch_hashes_{table} SEMI JOIN ({lake_hashes}) USING (_hash)"
            ).fetchnumpy()["_hash"]
        finally:
            con.unregister(f"_batch_hashes_{table}")
        hashes = np.union1d(hashes, in_lake)
    return hashes


def _repeated_hashes_sql(
    con: duckdb.DuckDBPyConnection, table: str, lake_hashes: str | None
) -> np.ndarray:
    """:func:`_repeated_hashes` in DuckDB, for batches too large to sort the hashes in memory."""
    hashes = con.sql(f"""
        SELECT _hash FROM st_{table}_pieces WHERE _q IS NULL
        GROUP BY _hash HAVING count(*) > 1""").fetchnumpy()["_hash"]
    if lake_hashes is None:
        return hashes
    in_lake = con.sql(f"""
        SELECT _hash FROM (SELECT DISTINCT _hash FROM st_{table}_pieces WHERE _q IS NULL)
        SEMI JOIN ({lake_hashes}) USING (_hash)""").fetchnumpy()["_hash"]
    return np.union1d(hashes, in_lake)


def _accepted_hashes(ctx: _Ctx, table: str) -> np.ndarray:
    """The row hashes of every accepted staged row of ``table``, sorted.

    The hashes each piece kept aside as it was staged (:class:`_PieceTally`), in one sort:
    numpy's default sort (SIMD on this machine's AVX-512) took 0.27 s for 20M hashes, less
    than sorting each piece's on the staging threads (0.26 s) and merging the sorted runs
    (0.37 s with the same sort, 0.6-0.7 s with the stable one). DuckDB's ``GROUP BY _hash``
    over the stage cost 4x the CPU (about 5 CPU-s per 20M rows).
    """
    runs = [np.load(_hash_path(ctx, pid)) for pid in ctx.parts[table]]
    merged = np.concatenate(runs) if runs else np.empty(0, np.uint64)
    runs.clear()
    merged.sort()  # in place
    return merged


def _stage_candidates(
    con: duckdb.DuckDBPyConnection, ctx: _Ctx, table: str, hashes: np.ndarray
) -> None:
    """``cand_<table>``: the accepted staged rows whose hash is in ``hashes``.

    Picked piece by piece with pyarrow from the memory-mapped stage and written to one more
    Arrow file, so even a batch of nothing but duplicates never has to fit in memory.
    """
    value_set = pa.array(hashes, pa.uint64())
    path = ctx.stage / "pieces" / f"candidates-{table}.arrow"

    def pick(pid: int) -> pa.Table:
        with pa.memory_map(str(_piece_path(ctx, pid))) as f:
            piece = pa.ipc.open_file(f).read_all()
            if not len(value_set):
                return piece.schema.empty_table()
            keep = pc.and_(pc.is_null(piece["_q"]), pc.is_in(piece["_hash"], value_set))
            return piece.filter(keep)

    pids, k = ctx.parts[table], max(1, ctx.threads)
    if not len(value_set):
        pids = pids[:1]  # no hash repeats: only the schema is needed, read no other piece
    writer = None
    with ThreadPoolExecutor(k) as pool:  # is_in and filter release the GIL
        for i in range(0, len(pids), k):  # k pieces at a time: memory stays bounded
            for t in pool.map(pick, pids[i : i + k]):
                writer = writer or pa.ipc.new_file(str(path), t.schema)
                writer.write_table(t)
    if writer is not None:
        writer.close()
    _register_pieces(con, ctx, f"cand_{table}", [path])


def _lake_files_for(con: duckdb.DuckDBPyConnection, lake: Lake, table: str) -> list[Path]:
    """Committed files of ``table`` that could hold rows equal to the staged ones."""
    if not lake.exists():
        return []
    if table not in schema.PARTITIONED:
        return lake.files(table)
    return lake.files(table, partitions={(p // 100, p % 100) for p in _partitions(con, table)})


def _partitions(con: duckdb.DuckDBPyConnection, table: str) -> list[int]:
    """``year * 100 + month`` of every partition the accepted rows of ``table`` fall in."""
    ts = ident(schema.TIME_COLUMN[table])
    naive = f"make_timestamp(epoch_us({ts}))"  # by arithmetic, no ICU calendar
    return [
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT CAST(year({naive}) * 100 + month({naive}) AS INTEGER) "
            f"FROM st_{table} WHERE _q IS NULL AND {ts} IS NOT NULL ORDER BY 1"
        ).fetchall()
    ]


# ---- pass 3: write partitions and quarantine ---------------------------------------------
def _write(
    con: duckdb.DuckDBPyConnection, inputs: list[_Input], ctx: _Ctx
) -> dict[str, list[tuple[Path, str]]]:
    """Write accepted rows into their month partitions, rejected rows into quarantine (staged).

    The accepted rows are written with pyarrow straight from the staged Arrow pieces: per
    piece, drop rejected rows and duplicates, sort by month, and append each month's rows to
    that month's file. A few writer threads run at once, each with one open file per month,
    so a batch adds one file per month and writer whatever the number of pieces. (pyarrow
    encodes Parquet in about half the CPU of DuckDB's partitioned COPY, and its files are
    smaller.) The quarantine is written by DuckDB meanwhile, on a thread of its own: the
    writers leave a fifth of the two cores idle (waiting for the GIL, mostly).
    """
    written: dict[str, list[tuple[Path, str]]] = {}
    names = dict(con.execute("SELECT _fi, name FROM _files").fetchall())
    file_names = pa.array([names[i] for i in range(len(names))], pa.string())
    dups: dict[tuple[str, int], np.ndarray] = {}
    for table in sorted(ctx.tables):
        for oi, keys in con.execute(
            f"SELECT _oi, list((CAST(_fi AS BIGINT) << 40) + _row) FROM dup_{table} GROUP BY 1"
        ).fetchall():
            dups[(table, oi)] = np.sort(np.asarray(keys, dtype=np.int64))
    jobs: queue.Queue[tuple[str, int]] = queue.Queue()
    for table in sorted(ctx.tables):
        for pid in ctx.parts[table]:
            jobs.put((table, pid))
    workers = [
        _LakeWriter(ctx, k, file_names, dups) for k in range(max(1, min(ctx.threads, jobs.qsize())))
    ]
    errors: list[BaseException] = []
    quarantined: list[tuple[Path, str]] = []

    def quarantine(cur: duckdb.DuckDBPyConnection) -> None:
        try:
            for name, pieces in ctx.datasets.items():
                cur.register(name, pieces)
            quarantined.extend(_write_quarantine(cur, ctx))
        except BaseException as e:  # re-raised on the calling thread
            errors.append(e)
        finally:
            cur.close()
            ctx.stage_read.set()  # the lake writers may now delete the pieces they are done with

    def work(w: _LakeWriter) -> None:
        try:
            while not errors:
                try:
                    table, pid = jobs.get_nowait()
                except queue.Empty:
                    break
                w.write_piece(table, pid)
        except BaseException as e:  # re-raised on the calling thread
            errors.append(e)
        finally:
            w.close()

    threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in workers]
    threads.append(threading.Thread(target=quarantine, args=(con.cursor(),), daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    for pid in ctx.written_pieces:  # written while the quarantine still read the stage
        _piece_path(ctx, pid).unlink(missing_ok=True)
    if quarantined:
        written[lake_mod.QUARANTINE] = quarantined
    for w in workers:
        for table, path in w.files:
            rel = path.relative_to(ctx.stage / "out")
            written.setdefault(table, []).append((path, str(rel)))
    for table in written:
        written[table].sort(key=lambda x: x[1])
    return written


class _LakeWriter:
    """One writer thread's open Parquet files: one per (table, month), appended piece by piece."""

    def __init__(
        self, ctx: _Ctx, k: int, file_names: pa.Array, dups: dict[tuple[str, int], np.ndarray]
    ):
        self.ctx, self.k, self.file_names, self.dups = ctx, k, file_names, dups
        self.open: dict[tuple[str, int | None], tuple[pq.ParquetWriter, list[pa.Table], int]] = {}
        self.files: list[tuple[str, Path]] = []
        self.buffered = 0
        self.repeated: dict[str, tuple[str, pa.Array]] = {}
        ts = int(ctx.now.timestamp() * 1_000_000)
        self.ingested_at = pa.scalar(ts, pa.timestamp("us", tz="UTC"))

    def write_piece(self, table: str, pid: int) -> None:
        offset = self.ctx.offsets.get(pid, 0)
        with pa.memory_map(str(_piece_path(self.ctx, pid))) as f:
            reader = pa.ipc.open_file(f)
            group: list[pa.RecordBatch] = []
            rows = 0
            for i in range(reader.num_record_batches):  # a few batches at a time: memory stays
                batch = reader.get_batch(i)  # small, slices per month stay large
                group.append(batch)
                rows += batch.num_rows
                if rows >= WRITE_BATCH_ROWS or i == reader.num_record_batches - 1:
                    self._write_batch(table, pa.Table.from_batches(group), offset)
                    group, rows = [], 0
        if self.ctx.stage_read.is_set():  # written: free its disk while the others work
            _piece_path(self.ctx, pid).unlink()
        else:
            with self.ctx.lock:
                self.ctx.written_pieces.append(pid)

    def _write_batch(self, table: str, batch: pa.Table, offset: int) -> None:
        if batch.num_rows == 0:
            return
        keep = batch["_q"].is_null().to_numpy()
        dup = self.dups.get((table, batch["_oi"][0].as_py()))
        if dup is not None and len(dup):
            key = (batch["_fi"].to_numpy().astype(np.int64) << 40) + batch["_row"].to_numpy()
            keep &= _not_in(key + offset, dup)
        if not keep.any():
            return
        if table not in schema.PARTITIONED:
            sub = batch if keep.all() else batch.filter(pa.array(keep))
            self._append(table, None, self._canonical(table, sub, offset))
            return
        part = _months(batch[schema.TIME_COLUMN[table]], keep)
        for month, rows in _by_month(part, keep, batch):
            self._append(table, month, self._canonical(table, rows, offset))

    def _canonical(self, table: str, sub: pa.Table, offset: int) -> pa.Table:
        target = schema.arrow_schema(table)
        n = sub.num_rows
        cols = [sub[f.name] for f in schema.fields(table)]
        lo, hi = pc.min_max(sub["_fi"]).values()
        cols += [
            self._same(self.file_names[lo.as_py()].as_py(), n, "source")
            if lo == hi
            else self.file_names.take(sub["_fi"]),
            pc.add(sub["_row"], offset) if offset else sub["_row"],
            pa.repeat(self.ingested_at, n),
            self._same(self.ctx.batch_id, n, "batch_id"),
        ]
        return pa.Table.from_arrays(cols, schema=target)

    def _same(self, value: str, n: int, column: str) -> pa.Array:
        """``n`` times ``value``: a slice of the longest one built so far for ``column``.

        Building it anew for every slice of a batch held the GIL for 0.5 s per 20M lines.
        """
        have = self.repeated.get(column)
        if have is None or have[0] != value or len(have[1]) < n:
            have = (value, _repeat(value, n))
            self.repeated[column] = have
        return have[1].slice(0, n)

    def _append(self, table: str, part: int | None, rows: pa.Table) -> None:
        key = (table, part)
        if key not in self.open:
            sub = "" if part is None else f"year={part // 100}/month={part % 100}/"
            name = f"{sub}part-{self.ctx.batch_id}-{self.k}.parquet"
            path = self.ctx.stage / "out" / table / name
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = pq.ParquetWriter(path, rows.schema, **parquet_options(rows.schema))
            self.files.append((table, path))
            self.open[key] = (writer, [], 0)
        writer, buf, n = self.open[key]
        buf.append(rows)
        self.open[key] = (writer, buf, n + rows.num_rows)
        self.buffered += rows.num_rows
        if n + rows.num_rows >= ROW_GROUP_ROWS:
            self._flush(key)
        while self.buffered > BUFFER_ROWS:  # many months at once: flush the biggest first
            self._flush(max(self.open, key=lambda k: self.open[k][2]))

    def _flush(self, key: tuple[str, int | None]) -> None:
        writer, buf, n = self.open[key]
        if buf:
            writer.write_table(pa.concat_tables(buf), row_group_size=ROW_GROUP_ROWS)
        self.open[key] = (writer, [], 0)
        self.buffered -= n

    def close(self) -> None:
        for key in list(self.open):
            self._flush(key)
            self.open[key][0].close()
        self.open.clear()


def _by_month(part: np.ndarray, keep: np.ndarray, batch: pa.Table) -> list[tuple[int, pa.Table]]:
    """The kept rows of ``batch`` by month (``part``), in month order, each month in row order.

    A batch covers one or two months, plus a few rows of other months (late lines, back-dated
    corrections) that a full reorder would make every row pay for: a ``take`` of the whole
    batch cost 1.0-1.3 CPU-s more per 20M lines and was the ingest's memory peak. So each
    month holding a large share of the rows is one ``filter`` of the batch, and only the rows
    of the other months are gathered and sorted.
    """
    kept = part[keep]
    lo = int(kept.min())
    counts = np.bincount(kept - lo)  # the months are few and close: no sort (np.unique)
    months = np.flatnonzero(counts) + lo
    counts = counts[counts > 0]
    if len(months) == 1:
        return [(int(months[0]), batch if keep.all() else batch.filter(pa.array(keep)))]
    big = counts * 8 >= len(kept)
    out = [(int(m), batch.filter(pa.array(keep & (part == m)))) for m in months[big]]
    if not big.all():
        few = keep & ~np.isin(part, months[big])
        rows = batch.filter(pa.array(few))  # filter, then sort the few: take on a table of
        rows = rows.take(pa.array(np.argsort(part[few], kind="stable")))  # many chunks copies
        start = 0
        for m, n in zip(months[~big], counts[~big], strict=True):
            out.append((int(m), rows.slice(start, int(n))))
            start += int(n)
    return sorted(out, key=lambda x: x[0])


def _months(ts: pa.ChunkedArray, keep: np.ndarray) -> np.ndarray:
    """``year * 100 + month`` (UTC) of each row of the timestamps ``ts``; only kept rows count.

    By bisection among the starts of the months the kept rows span (a few, usually): a fifth
    of the CPU of numpy's calendar conversion, a tenth of DuckDB's ``year()``/``month()``.
    """
    if ts.null_count and not ts.is_valid().to_numpy(zero_copy_only=False)[keep].all():
        raise RuntimeError("accepted rows without a time in the stage")  # pragma: no cover
    us = pc.fill_null(ts.cast(pa.int64()), 0).to_numpy()
    kept = us[keep]
    first, last = kept.min(), kept.max()
    span = np.arange(
        np.datetime64(int(first), "us").astype("datetime64[M]"),
        np.datetime64(int(last), "us").astype("datetime64[M]") + 1,
    )
    index = np.searchsorted(span.astype("datetime64[us]").view(np.int64), us, side="right") - 1
    m = span.view(np.int64)[np.maximum(index, 0)]  # months since 1970-01
    return (m // 12 + 1970) * 100 + m % 12 + 1


def _not_in(key: np.ndarray, dup: np.ndarray) -> np.ndarray:
    """Mask of the ``key`` values not in the sorted ``dup``.

    Rows of a piece come in row order, so the duplicates are found by bisection among the
    few that fall in the piece's range: no hash set of every row (``is_in`` cost 1 CPU-s).
    """
    if len(key) > 1 and not np.all(key[1:] > key[:-1]):
        return ~np.isin(key, dup)
    mask = np.ones(len(key), dtype=bool)
    if len(key):
        d = dup[np.searchsorted(dup, key[0]) : np.searchsorted(dup, key[-1], side="right")]
        pos = np.searchsorted(key, d)
        mask[pos[key[pos] == d]] = False
    return mask


def _repeat(value: str, n: int) -> pa.Array:
    """``n`` times the string ``value``, built from two buffers (``pa.repeat`` copies n times)."""
    b = value.encode()
    if n * len(b) >= 2**31 - 1:
        return pa.repeat(pa.scalar(value, pa.string()), n)
    offsets = np.arange(n + 1, dtype=np.int32) * np.int32(len(b))
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(b * n))


# Columns whose values are mostly distinct: a dictionary would only be tried and abandoned.
_DISTINCT = frozenset(
    {"customer_id", "order_id", "session_id", "comment", "attributes", "properties"}
)


def parquet_options(target: pa.Schema) -> dict:
    """Writer options of lake files, chosen by measurement; encoding was the largest CPU cost.

    Per million rows of order lines (pyarrow, one core): defaults 0.54 CPU-s; these 0.27 CPU-s,
    and files 20% smaller. Snappy, not zstd (a third cheaper). Dictionaries only for strings
    that repeat (categories, channels, lineage); the constant ``ingested_at`` as a dictionary
    too. Min/max statistics only where readers filter (the time column) or look a customer up:
    statistics on every column cost 0.06 CPU-s. Monotonic integers delta-encoded.
    """
    table = target.metadata[b"table"].decode() if target.metadata else ""
    time_col = schema.TIME_COLUMN.get(table, "ts")
    names = target.names
    return {
        "compression": "snappy",
        "use_dictionary": [
            f.name
            for f in target
            if (pa.types.is_string(f.type) and f.name not in _DISTINCT) or f.name == "ingested_at"
        ],
        "write_statistics": [c for c in (time_col, "customer_id") if c in names],
        "column_encoding": {
            c: "DELTA_BINARY_PACKED" for c in (time_col, "source_row") if c in names
        },
    }


def _write_quarantine(con: duckdb.DuckDBPyConnection, ctx: _Ctx) -> list[tuple[Path, str]]:
    """The rejected rows and duplicates as one staged file (none if there are none)."""
    meta = (
        f"TIMESTAMPTZ '{ctx.now.isoformat()}' AS ingested_at, '{quote(ctx.batch_id)}' AS batch_id"
    )
    quarantine_parts = []
    for table in sorted(ctx.tables):
        quarantine_parts.append(
            f"SELECT '{table}' AS \"table\", f.name AS source, s._row AS source_row, {meta}, "
            f's._rule AS rule, s._reason AS reason, s._column AS "column", s._raw AS raw '
            f"FROM st_{table} s JOIN _files f ON f._fi = s._fi WHERE s._q IS NOT NULL "
            f"UNION ALL SELECT '{table}', f.name, d._row, {meta}, 'duplicate', d._dup_of, NULL, "
            f"d._raw FROM dup_{table} d JOIN _files f ON f._fi = d._fi"
        )
    if not quarantine_parts:
        return []
    qsql = " UNION ALL ".join(quarantine_parts)
    qpath = ctx.stage / "out" / lake_mod.QUARANTINE / f"part-{ctx.batch_id}.parquet"
    qpath.parent.mkdir(parents=True, exist_ok=True)
    n = con.execute(f"COPY ({qsql}) TO '{quote(qpath)}' (FORMAT parquet, COMPRESSION zstd)")
    if n.fetchone()[0]:
        return [(qpath, f"{lake_mod.QUARANTINE}/part-{ctx.batch_id}.parquet")]
    qpath.unlink(missing_ok=True)
    return []


def _account(
    con: duckdb.DuckDBPyConnection, inputs: list[_Input], ctx: _Ctx, seconds: dict[int, float]
) -> list[SourceRecord]:
    """Per input and output: candidates = accepted + quarantined + duplicates, by rule."""
    stats = ctx.stats  # counts by rule and flag, from _check_stage
    for table in sorted(ctx.tables):
        flag_sql = "".join(
            f", sum((_flags >> {bit}) & 1) AS {ident('flag:' + name)}"
            for name, bit in ctx.flag_bits.items()
        )
        res = con.execute(
            f"SELECT _fi, _oi, count(*) AS n {flag_sql} FROM dup_{table} GROUP BY ALL"
        )
        names = [c[0] for c in res.description]
        for row in res.fetchall():  # duplicates: neither accepted nor counted in the flags
            d = dict(zip(names, row, strict=True))
            st = stats[(d["_fi"], d["_oi"])]
            st["duplicates"] = int(d["n"])
            for k, v in d.items():
                if k.startswith("flag:"):
                    st[k] = st.get(k, 0) - int(v or 0)
    records = []
    for inp in inputs:
        rec = SourceRecord(
            source=inp.name,
            path=str(inp.path or inp.source.name),
            fingerprint=inp.fingerprint,
            bytes=inp.bytes,
            table=inp.source.outputs[0].table,
            seconds=seconds.get(inp.fi, 0.0),
        )
        for oi, out in enumerate(inp.source.outputs):
            st = {"candidates": 0, "quarantined": 0, "duplicates": 0, **stats.get((inp.fi, oi), {})}
            accepted = st["candidates"] - st["quarantined"] - st["duplicates"]
            rules = {k[5:]: v for k, v in st.items() if k.startswith("rule:")}
            if st["duplicates"]:
                rules["duplicate"] = st["duplicates"]
            flags = {k[5:]: v for k, v in st.items() if k.startswith("flag:") and v}
            key = out.table if oi == 0 else f"{out.table}#{oi}"
            rec.outputs[key] = {
                "candidates": st["candidates"],
                "accepted": accepted,
                "quarantined": st["quarantined"],
                "duplicates": st["duplicates"],
                **{f"rule:{k}": v for k, v in sorted(rules.items())},
                **{f"flag:{k}": v for k, v in sorted(flags.items())},
            }
            if oi == 0:
                rec.rows_in, rec.accepted = st["candidates"], accepted
                rec.quarantined, rec.duplicates = st["quarantined"], st["duplicates"]
                rec.rules = dict(sorted(rules.items()))
                rec.flags = dict(sorted(flags.items()))
        records.append(rec)
    return records


# ---- helpers ----------------------------------------------------------------------------
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
