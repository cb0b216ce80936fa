"""Pass 3 of an ingest: write the accepted rows into month partitions, the rest into quarantine.

Into the batch's staging folder (``out/``), from which :meth:`personas.lake.Lake.commit` moves
them into the lake. pyarrow writes the lake files straight from the staged Arrow pieces, a few
writer threads at once, while DuckDB writes the quarantine on a thread of its own.
"""

from __future__ import annotations

import itertools
import queue
import threading
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from personas import lake as lake_mod
from personas import schema
from personas.ingest.arrays import bools, ints, strings, values
from personas.ingest.context import Context, Input
from personas.ingest.stage import stage_view
from personas.sqltext import quote

#: Rows the lake writer reads from the stage at a time.
WRITE_BATCH_ROWS = 500_000
#: Rows per Parquet row group written into the lake (per month, per writer) ...
ROW_GROUP_ROWS = 122_880
#: ... and rows a writer holds across all months before it writes the biggest group early.
BUFFER_ROWS = 300_000


def write_lake(
    con: duckdb.DuckDBPyConnection, inputs: list[Input], ctx: Context
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
    file_names = strings([names[i] for i in range(len(names))])
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
            try:  # closing writes the last row groups: it can fail too (a full disk)
                w.close()
            except BaseException as e:
                errors.append(e)

    threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in workers]
    threads.append(threading.Thread(target=quarantine, args=(con.cursor(),), daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    for pid in ctx.written_pieces:  # written while the quarantine still read the stage
        ctx.piece_path(pid).unlink(missing_ok=True)
    if quarantined:
        written[lake_mod.QUARANTINE] = quarantined
    for w in workers:
        for table, (n, total) in w.written.items():
            have = ctx.written.setdefault(table, {"rows": 0, "checksum": 0})
            have["rows"] += n
            have["checksum"] += total
        for table, path in w.files:
            rel = path.relative_to(ctx.stage / "out")
            written.setdefault(table, []).append((path, str(rel)))
    for table in written:
        written[table].sort(key=lambda x: x[1])
    return written


class _LakeWriter:
    """One writer thread's open Parquet files: one per (table, month), appended piece by piece."""

    def __init__(
        self, ctx: Context, k: int, file_names: pa.Array, dups: dict[tuple[str, int], np.ndarray]
    ):
        self.ctx, self.k, self.file_names, self.dups = ctx, k, file_names, dups
        self.open: dict[tuple[str, int | None], tuple[pq.ParquetWriter, list[pa.Table], int]] = {}
        self.files: list[tuple[str, Path]] = []
        self.buffered = 0
        self.repeated: dict[str, tuple[str, pa.Array]] = {}
        self.written: dict[str, list[int]] = {}  # table -> [rows, sum of source_row]
        ts = int(ctx.now.timestamp() * 1_000_000)
        self.ingested_at = ints(np.array([ts], np.int64)).cast(pa.timestamp("us", tz="UTC"))[0]

    def write_piece(self, table: str, pid: int) -> None:
        offset = self.ctx.offsets.get(pid, 0)
        with pa.memory_map(str(self.ctx.piece_path(pid))) as f:
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
            self.ctx.piece_path(pid).unlink()
        else:
            with self.ctx.lock:
                self.ctx.written_pieces.append(pid)

    def _write_batch(self, table: str, batch: pa.Table, offset: int) -> None:
        if batch.num_rows == 0:
            return
        keep = values(batch["_q"].is_null())
        dup = self.dups.get((table, batch["_oi"][0].as_py()))
        if dup is not None and len(dup):
            key = (values(batch["_fi"]).astype(np.int64) << 40) + values(batch["_row"])
            keep &= _not_in(key + offset, dup)
        if not keep.any():
            return
        if table not in schema.PARTITIONED:
            sub = batch if keep.all() else batch.filter(bools(keep))
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
            pc.add(sub["_row"], ints(np.array([offset], np.int64))[0]) if offset else sub["_row"],
            pa.repeat(self.ingested_at, n),
            self._same(self.ctx.batch_id, n, "batch_id"),
        ]
        # the rows and checksum the commit records, counted here, independently of any reader
        tally = self.written.setdefault(table, [0, 0])
        tally[0] += n
        tally[1] += pc.sum(cols[-3]).as_py() or 0
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

    Rows in time order (an event log) are cut into runs of one month, each a slice. Otherwise
    a batch covers one or two months, plus a few rows of other months (late lines, back-dated
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
        return [(int(months[0]), batch if keep.all() else batch.filter(bools(keep)))]
    starts = np.flatnonzero(kept[1:] != kept[:-1]) + 1
    if len(starts) < 2 * len(months):
        # the rows come in runs of one month (an export in time order, like most event logs):
        # each run is a slice of the kept rows, no copy; a month may get a few runs, in row
        # order (the sort is stable)
        rows = batch if keep.all() else batch.filter(bools(keep))
        bounds = [0, *starts.tolist(), len(kept)]
        runs = [(int(kept[a]), rows.slice(a, b - a)) for a, b in itertools.pairwise(bounds)]
        return sorted(runs, key=lambda x: x[0])
    big = counts * 8 >= len(kept)
    out = [(int(m), batch.filter(bools(keep & (part == m)))) for m in months[big]]
    if not big.all():
        few = keep & ~np.isin(part, months[big])
        rows = batch.filter(bools(few))  # filter, then sort the few: take on a table of
        rows = rows.take(ints(np.argsort(part[few], kind="stable")))  # many chunks copies
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
    if ts.null_count and not values(ts.is_valid())[keep].all():
        raise RuntimeError("accepted rows without a time in the stage")  # pragma: no cover
    us = values(ts.cast(pa.int64()), 0)
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
        return pa.repeat(strings([value])[0], n)
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


def _rejected(ctx: Context, table: str) -> int:
    """Rows of ``table`` the rules rejected, as the staged pieces counted them."""
    return sum(
        n
        for pid in ctx.parts[table]
        for by_verdict in ctx.tallies[pid].counts.values()
        for verdict, n in by_verdict.items()
        if isinstance(verdict, int) and verdict
    )


def _write_quarantine(con: duckdb.DuckDBPyConnection, ctx: Context) -> list[tuple[Path, str]]:
    """The rejected rows and duplicates as one staged file (none if there are none)."""
    meta = (
        f"TIMESTAMPTZ '{ctx.now.isoformat()}' AS ingested_at, '{quote(ctx.batch_id)}' AS batch_id"
    )
    quarantine_parts = []
    for table in sorted(ctx.tables):
        if _rejected(ctx, table):  # else the stage need not be scanned for them
            quarantine_parts.append(
                f"SELECT '{table}' AS \"table\", f.name AS source, s._row AS source_row, "
                f'{meta}, s._rule AS rule, s._reason AS reason, s._column AS "column", '
                f"s._raw AS raw FROM {stage_view(con, ctx, table)} s "
                "JOIN _files f ON f._fi = s._fi WHERE s._q IS NOT NULL"
            )
        quarantine_parts.append(
            f"SELECT '{table}' AS \"table\", f.name AS source, d._row AS source_row, {meta}, "
            f"'duplicate' AS rule, d._dup_of AS reason, CAST(NULL AS VARCHAR) AS \"column\", "
            f"d._raw AS raw "
            f"FROM dup_{table} d JOIN _files f ON f._fi = d._fi"
        )
    if not quarantine_parts:
        return []
    qsql = " UNION ALL ".join(quarantine_parts)
    qpath = ctx.stage / "out" / lake_mod.QUARANTINE / f"part-{ctx.batch_id}.parquet"
    qpath.parent.mkdir(parents=True, exist_ok=True)
    n = con.execute(f"COPY ({qsql}) TO '{quote(qpath)}' (FORMAT parquet, COMPRESSION zstd)")
    rows = n.fetchone()[0]
    if rows:
        total = pq.read_table(qpath, columns=["source_row"])["source_row"]
        ctx.written[lake_mod.QUARANTINE] = {"rows": rows, "checksum": pc.sum(total).as_py() or 0}
        return [(qpath, f"{lake_mod.QUARANTINE}/part-{ctx.batch_id}.parquet")]
    qpath.unlink(missing_ok=True)
    return []
