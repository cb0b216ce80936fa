"""Ingest source files into the lake: map, clean, quarantine, de-duplicate, commit atomically.

Every input row ends in exactly one place: the lake (accepted), ``quarantine/`` with the rule
that rejected it (quarantined), or ``quarantine/`` as an exact duplicate of a row already kept
(duplicates). ``rows_in = accepted + quarantined + duplicates`` is checked for every source before
the batch commits; a batch that does not balance is not committed.

The work runs in DuckDB and pyarrow in three passes, with memory bounded by ``memory_limit``
(DuckDB spills to the batch's staging folder):

1. per group of files read together (a large file: per chunk, several at once), and per output
   table: parse, treat personal data, apply the named rules, and stage the canonical values
   with the verdicts as Arrow IPC pieces on disk (:mod:`personas.ingest.stage`, with the SQL
   of :mod:`personas.ingest.canonical`);
2. find exact duplicates, within the batch and against rows already in the lake (only the
   partitions the batch touches are read: equal rows have equal timestamps;
   :mod:`personas.ingest.dedupe`);
3. write rejected rows into quarantine, then accepted rows into Hive partitions (pyarrow, a
   few writer threads, each deleting a stage piece once written; :mod:`personas.ingest.write`),
   then commit, one Delta commit per table (:meth:`personas.lake.Lake.commit`).

This module plans the batch, runs the passes and does the accounting; what they share is a
:class:`personas.ingest.context.Context`. Where the time goes, and the choices it led to, is
in ``docs/ingestion.md`` (Speed).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from personas import lake as lake_mod
from personas import schema
from personas.diskspace import disk_full, is_disk_full, tree_bytes
from personas.errors import MappingError, SourceError
from personas.ingest.context import Context, Input
from personas.ingest.dedupe import find_duplicates
from personas.ingest.files import fingerprint
from personas.ingest.mapping import Mapping, Source, load_mapping
from personas.ingest.readers import read_sql_table, sql_fingerprint
from personas.ingest.stage import check_stage, stage_split, stage_unit, stage_views, sum_tallies
from personas.ingest.textfiles import group_key, splittable
from personas.ingest.write import write_lake
from personas.lake import Batch, Lake, SourceRecord, pause_point
from personas.lakecheck import require_intact
from personas.sqltext import ident

Progress = Callable[[str, int, int], None]

#: Default DuckDB memory limit of an ingest; the stage spills to disk beyond it.
DEFAULT_MEMORY_LIMIT = "1GB"


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
        require_intact(lake)  # duplicates are looked up in the lake's files: they must read
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
        ctx = Context(
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
            files_out = write_lake(con, inputs, ctx)
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
                written=ctx.written,
            )
            lake.commit(batch, files_out)
        except BaseException as e:
            con.close()
            staged = tree_bytes([stage])
            lake.recover()
            if is_disk_full(e):  # one line, not a traceback nor the mapping hint
                need = max(staged * 3 // 2, 2 * sum(i.bytes for i in inputs))
                raise disk_full(lake.root, need) from None
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
) -> list[Input]:
    seen: dict[str, str] = {}
    inputs: list[Input] = []
    sources = [(p, mapping.source_for(p)) for p in files]  # fail fast on unmatched files
    for p, src in sources:
        fp, size = fingerprint(p)
        if fp in known or fp in seen:
            report.skipped.append((p.name, known.get(fp) or f"same content as {seen[fp]}"))
            continue
        seen[fp] = p.name
        inputs.append(Input(len(inputs), src, p, p.name, fp, size))
    if include_sql:
        for src in mapping.sources:
            if src.format != "sql":
                continue
            table = read_sql_table(src)
            fp, size = sql_fingerprint(table, src)
            if fp in known:
                report.skipped.append((src.name, known[fp]))
                continue
            inputs.append(Input(len(inputs), src, None, src.name, fp, size, table))
    return inputs


def _needs_key(source: Source) -> bool:
    return "hash" in source.personal_data.values() or any(
        c.pseudonymise for o in source.outputs for c in o.columns.values()
    )


def _units(inputs: list[Input]) -> list[list[Input]]:
    """Inputs read in one scan: small delimited files of one source with the same header."""
    groups: dict[tuple, list[Input]] = {}
    units: list[list[Input]] = []
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


# ---- the passes and the accounting ---------------------------------------------------------
def _run(
    con: duckdb.DuckDBPyConnection,
    inputs: list[Input],
    ctx: Context,
    lake: Lake,
    progress: Progress | None,
) -> list[SourceRecord]:
    """Passes 1 and 2 (stage, check, find duplicates); the row accounting of every input."""
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
            stage_split(con, inp, ctx, ui)
        else:
            stage_unit(con, unit, ctx, ui)
        share = (time.perf_counter() - t) / len(unit)
        for inp in unit:
            seconds[inp.fi] = round(share, 4)
        done += len(unit)
    _note("read", progress, len(inputs), len(inputs))
    stage_views(con, ctx)
    pause_point("staged")
    sum_tallies(ctx)
    check_stage(con, inputs, ctx)
    _note("deduplicate", progress)
    find_duplicates(con, ctx, lake)
    return _account(con, inputs, ctx, seconds)


def _account(
    con: duckdb.DuckDBPyConnection, inputs: list[Input], ctx: Context, seconds: dict[int, float]
) -> list[SourceRecord]:
    """Per input and output: candidates = accepted + quarantined + duplicates, by rule."""
    stats = ctx.stats  # counts by rule and flag, from check_stage
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
