"""Pass 2 of an ingest: exact duplicates, within the batch and against the lake.

Only the hashes of a few key columns are compared for every row (kept aside while staging
and sorted in memory, or counted in DuckDB when there are too many); the rows whose hash
repeats, in the batch or in the lake partitions the batch touches (equal rows have equal
timestamps), are the candidates, and among them rows equal in every canonical column are
duplicates. See ``docs/ingestion.md`` (Speed) for what this costs and why.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from personas import schema
from personas.ingest.arrays import ints
from personas.ingest.canonical import HASH_KEYS
from personas.ingest.context import Context
from personas.ingest.stage import register_pieces, stage_view
from personas.lake import Lake
from personas.sqltext import ident, quote


def find_duplicates(con: duckdb.DuckDBPyConnection, ctx: Context, lake: Lake) -> None:
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
        part, keyed = _compared(canon, ctx.dedupe_keys.get(table, {}))
        hashed = ", ".join(ident(c) for c in HASH_KEYS[table])
        pack = ", ".join(f"{ident(c)} := r.{ident(c)}" for c in canon)
        pack_a = ", ".join(f"{ident(c)} := a.{ident(c)}" for c in canon)
        files = _lake_files_for(con, ctx, lake, table)
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
                   CASE WHEN {keyed} THEN 'same dedupe key as ' ELSE 'exact duplicate of ' END
                   || f.name || ' row ' || r.first_row AS _dup_of,
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


def _compared(canon: list[str], keyed: dict[tuple[int, int], tuple[str, ...]]) -> tuple[str, str]:
    """What rows with equal hashes must also share, and the SQL test of a keyed row.

    Whole rows by default; for the outputs of a source with ``dedupe: key:``, only the key's
    canonical columns (its other columns are in the hash). Without keyed outputs the SQL is
    the plain column list, so the default path is unchanged.
    """
    if not keyed:
        return ", ".join(ident(c) for c in canon), "false"

    def among(pairs: list[tuple[int, int]], r: str = "") -> str:
        return "(" + " OR ".join(f"({r}_fi = {fi} AND {r}_oi = {oi})" for fi, oi in pairs) + ")"

    exprs = []
    for c in canon:
        skip = [pair for pair, cols in keyed.items() if c not in cols]
        exprs.append(f"CASE WHEN {among(skip)} THEN NULL ELSE {ident(c)} END" if skip else ident(c))
    return ", ".join(exprs), among(list(keyed), "r.")


def _repeated_hashes(
    con: duckdb.DuckDBPyConnection, ctx: Context, table: str, lake_hashes: str | None
) -> np.ndarray:
    """Hashes of accepted staged rows that occur twice or more in the batch, or in the lake.

    ``lake_hashes`` is a query of the hashes of the lake rows the batch could repeat (None:
    there are none).
    """
    if not all(ctx.tallies[pid].hashed for pid in ctx.parts[table]):  # too many to sort
        return _repeated_hashes_sql(con, ctx, table, lake_hashes)
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
    con: duckdb.DuckDBPyConnection, ctx: Context, table: str, lake_hashes: str | None
) -> np.ndarray:
    """:func:`_repeated_hashes` in DuckDB, for batches too large to sort the hashes in memory."""
    stage_view(con, ctx, table)
    hashes = con.sql(f"""
        SELECT _hash FROM st_{table}_pieces WHERE _q IS NULL
        GROUP BY _hash HAVING count(*) > 1""").fetchnumpy()["_hash"]
    if lake_hashes is None:
        return hashes
    in_lake = con.sql(f"""
        SELECT _hash FROM (SELECT DISTINCT _hash FROM st_{table}_pieces WHERE _q IS NULL)
        SEMI JOIN ({lake_hashes}) USING (_hash)""").fetchnumpy()["_hash"]
    return np.union1d(hashes, in_lake)


def _accepted_hashes(ctx: Context, table: str) -> np.ndarray:
    """The row hashes of every accepted staged row of ``table``, sorted.

    The hashes each piece kept aside as it was staged
    (:class:`personas.ingest.context.PieceTally`), in one sort: numpy's default sort (SIMD on
    this machine's AVX-512) took 0.27 s for 20M hashes, less than sorting each piece's on the
    staging threads (0.26 s) and merging the sorted runs (0.37 s with the same sort, 0.6-0.7 s
    with the stable one). DuckDB's ``GROUP BY _hash`` over the stage cost 4x the CPU (about 5
    CPU-s per 20M rows).
    """
    runs = [np.load(ctx.hash_path(pid)) for pid in ctx.parts[table]]
    merged = np.concatenate(runs) if runs else np.empty(0, np.uint64)
    runs.clear()
    merged.sort()  # in place
    return merged


def _stage_candidates(
    con: duckdb.DuckDBPyConnection, ctx: Context, table: str, hashes: np.ndarray
) -> None:
    """``cand_<table>``: the accepted staged rows whose hash is in ``hashes``.

    Picked piece by piece with pyarrow from the memory-mapped stage and written to one more
    Arrow file, so even a batch of nothing but duplicates never has to fit in memory.
    """
    value_set = ints(np.asarray(hashes, np.uint64))
    path = ctx.stage / "pieces" / f"candidates-{table}.arrow"

    def pick(pid: int) -> pa.Table:
        with pa.memory_map(str(ctx.piece_path(pid))) as f:
            piece = pa.ipc.open_file(f).read_all()
            if not len(value_set):
                return pa.Table.from_batches([], schema=piece.schema)
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
    register_pieces(con, ctx, f"cand_{table}", [path], mapped=True)


def _lake_files_for(
    con: duckdb.DuckDBPyConnection, ctx: Context, lake: Lake, table: str
) -> list[Path]:
    """Committed files of ``table`` that could hold rows equal to the staged ones."""
    if not lake.exists():
        return []
    if table not in schema.PARTITIONED:
        return lake.files(table)
    return lake.files(table, partitions={(p // 100, p % 100) for p in _partitions(con, ctx, table)})


def _partitions(con: duckdb.DuckDBPyConnection, ctx: Context, table: str) -> list[int]:
    """``year * 100 + month`` of every partition the accepted rows of ``table`` fall in."""
    ts = ident(schema.TIME_COLUMN[table])
    naive = f"make_timestamp(epoch_us({ts}))"  # by arithmetic, no ICU calendar
    return [
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT CAST(year({naive}) * 100 + month({naive}) AS INTEGER) "
            f"FROM {stage_view(con, ctx, table)} WHERE _q IS NULL AND {ts} IS NOT NULL "
            "ORDER BY 1"
        ).fetchall()
    ]
