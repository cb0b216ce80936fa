"""Ingest source files into the lake: map, clean, quarantine, de-duplicate, commit atomically.

Every input row ends in exactly one place: the lake (accepted), ``quarantine/`` with the rule
that rejected it (quarantined), or ``quarantine/`` as an exact duplicate of a row already kept
(duplicates). ``rows_in = accepted + quarantined + duplicates`` is checked for every source before
the batch commits; a batch that does not balance is not committed.

The work runs as SQL in DuckDB in three passes over staged Parquet, so memory stays bounded:
1. per source file and output table: parse, apply personal-data treatment and the named rules;
2. find exact duplicates, within the batch and against rows already in the lake;
3. write accepted rows into Hive partitions and rejected rows into quarantine, then commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from personas import lake as lake_mod
from personas import schema
from personas.cleaning import rules_for
from personas.errors import MappingError, SchemaError, SourceError
from personas.lake import Batch, Lake, SourceRecord
from personas.mapping import PII_NAME, Mapping, Output, Source, load_mapping
from personas.parsing import FieldSQL, field_sql, guess_hint
from personas.readers import RawSource, diagnose_text, fingerprint, open_source

Progress = Callable[[str, int, int], None]


@dataclass
class IngestReport:
    """What one ``ingest`` call did, source by source."""

    lake: str
    batch_id: str | None
    sources: list[SourceRecord] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

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
        for k, v in self.rules().items():
            lines.append(f"  {k:<22} {v:>12,}")
        by_table: dict[str, int] = {}
        for s in self.sources:
            for tname, o in s.outputs.items():
                by_table[tname] = by_table.get(tname, 0) + o.get("accepted", 0)
        for tname, n in sorted(by_table.items()):
            lines.append(f"  -> {tname:<19} {n:>12,} rows accepted")
        return "\n".join(lines)


@dataclass
class _Staged:
    """One (input, output) pair after pass 1."""

    fi: int
    source: Source
    out: Output
    out_index: int
    name: str
    path: Path
    record: SourceRecord


def ingest(
    paths: Sequence[str | Path],
    mapping: Mapping | str | Path,
    lake: Lake | str | Path,
    *,
    progress: Progress | None = None,
    now: datetime | None = None,
    include_sql: bool = True,
) -> IngestReport:
    """Ingest ``paths`` (and the mapping's SQL sources) into ``lake`` as one atomic batch.

    Files already in the lake (same content hash) are skipped, so re-running is a no-op.
    """
    t0 = time.perf_counter()
    mapping = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
    lake = lake if isinstance(lake, Lake) else Lake(lake)
    now = now or datetime.now(UTC)
    files = _expand(paths)
    key = mapping.pii_key()
    if mapping.needs_pii_key() and not key:
        raise MappingError(
            f"mapping {mapping.name!r} hashes personal data but no key is set: export "
            f"{mapping.pii_key_env}=<a long secret> (keep it the same across ingests so the "
            "same person gets the same pseudonym)"
        )
    with lake.lock():
        lake.recover()
        known = lake.fingerprints()
        batch_id = lake_mod.new_batch_id()
        report = IngestReport(lake=str(lake.root), batch_id=None)
        inputs = _plan(files, mapping, known, report, include_sql)
        if not inputs:
            report.seconds = time.perf_counter() - t0
            return report
        stage = lake.staging(batch_id)
        con = lake_mod.connect(temp_directory=str(stage / "spill"))
        ctx = _Ctx(batch_id=batch_id, now=now, key=key or "", stage=stage)
        try:
            staged = _pass1(con, inputs, ctx, progress)
            _note("deduplicate", progress)
            dups = _find_duplicates(con, staged, lake, ctx)
            _note("write", progress)
            files_out = _write(con, staged, dups, ctx)
            records = _account(con, staged, dups)
            for r in records:
                if not r.balanced():
                    raise RuntimeError(f"row accounting does not balance for {r.source}: {r}")
            batch = Batch(
                batch_id=batch_id, committed_at=now.isoformat(), mapping=mapping.name,
                mapping_hash=mapping.text_hash, schema_version=schema.SCHEMA_VERSION,
                sources=records, files={}, seconds=round(time.perf_counter() - t0, 3),
            )
            con.close()
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
@dataclass
class _Input:
    source: Source
    path: Path | None
    name: str
    fingerprint: str
    bytes: int
    table: object = None  # pre-read Arrow table for SQL sources


@dataclass
class _Ctx:
    batch_id: str
    now: datetime
    key: str
    stage: Path


def _expand(paths: Sequence[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.extend(sorted(x for x in p.rglob("*")
                              if x.is_file() and not x.name.startswith(".")))
        elif p.exists():
            out.append(p)
        else:
            raise SourceError(f"{p}: file not found")
    return sorted(dict.fromkeys(out), key=lambda x: (x.name, str(x)))


def _plan(files: list[Path], mapping: Mapping, known: dict[str, str], report: IngestReport,
          include_sql: bool) -> list[_Input]:
    seen: dict[str, str] = {}
    inputs: list[_Input] = []
    for p in files:
        src = mapping.source_for(p)
        fp, size = fingerprint(p)
        if fp in known or fp in seen:
            report.skipped.append((p.name, known.get(fp) or "this call"))
            continue
        seen[fp] = p.name
        inputs.append(_Input(src, p, p.name, fp, size))
    if include_sql:
        from personas.readers import read_sql_table, sql_fingerprint

        for src in mapping.sources:
            if src.format != "sql":
                continue
            table = read_sql_table(src)
            fp, size = sql_fingerprint(table, src)
            if fp in known:
                report.skipped.append((src.name, known[fp]))
                continue
            inputs.append(_Input(src, None, src.name, fp, size, table))
    return inputs


def _note(step: str, progress: Progress | None, done: int = 0, total: int = 0) -> None:
    if progress:
        progress(step, done, total)


# ---- pass 1: parse, treat personal data, apply rules -----------------------------------------
def _pass1(con: duckdb.DuckDBPyConnection, inputs: list[_Input], ctx: _Ctx,
           progress: Progress | None) -> list[_Staged]:
    staged: list[_Staged] = []
    for fi, inp in enumerate(inputs):
        _note("read", progress, fi, len(inputs))
        t = time.perf_counter()
        view = f"raw_{fi}"
        if inp.table is not None:
            from personas.readers import _register_arrow

            raw = _register_arrow(con, view, inp.table, inp.name)
        else:
            raw = open_source(con, inp.source, inp.path, view, ctx.stage)
        _check_personal(raw, inp.source)
        record = SourceRecord(source=inp.name, path=str(inp.path or inp.source.url),
                              fingerprint=inp.fingerprint, bytes=inp.bytes,
                              table=inp.source.outputs[0].table)
        for oi, out in enumerate(inp.source.outputs):
            sql = output_sql(raw, inp.source, out, ctx, inp.name, fi)
            path = ctx.stage / f"stage-{fi:05d}-{oi}.parquet"
            try:
                con.execute(f"COPY ({sql}) TO '{_q(path)}' (FORMAT parquet)")
            except (duckdb.Error, EOFError) as e:
                if inp.path is not None and inp.source.format_for(inp.path) in ("csv",) and (
                    _is_read_error(e)
                ):
                    raise diagnose_text(inp.path, inp.source, str(e)) from None
                raise SchemaError(
                    f"{inp.name}: the mapping for {out.table} could not be applied: "
                    f"{_first_line(e)}; check where:/expr: in source {inp.source.name!r}"
                ) from None
            staged.append(_Staged(fi, inp.source, out, oi, inp.name, path, record))
            _check_bad_values(con, staged[-1], raw)
        record.seconds = round(time.perf_counter() - t, 3)
        _check_empty(con, staged[-len(inp.source.outputs)], inp)
    _note("read", progress, len(inputs), len(inputs))
    return staged


def output_sql(raw: RawSource, source: Source, out: Output, ctx: _Ctx, name: str,
               fi: int) -> str:
    """SQL producing the pass-1 rows of one output: canonical columns + rule verdicts."""
    fields = schema.fields(out.table)
    ftypes = {f.name: schema.duckdb_type(f.type) for f in fields}
    exprs: dict[str, FieldSQL] = {}
    for fname, spec in out.columns.items():
        exprs[fname] = field_sql(fname, spec, ftypes[fname], raw, source, ctx.key)
    # layer 1: personal data treatment (drop / hash) before anything else sees the row
    keep = [c for c in raw.columns if c != "_row" and source.personal_data.get(c) != "drop"]
    pii_cols = []
    for c in keep:
        if source.personal_data.get(c) == "hash":
            pii_cols.append(f"sha256('{_q(ctx.key)}' || CAST({_id(c)} AS VARCHAR)) AS {_id(c)}")
        else:
            pii_cols.append(_id(c))
    where = f"WHERE ({out.where})" if out.where else ""
    layer1 = f"SELECT _row, {', '.join(pii_cols)} FROM {raw.sql} {where}"
    # layer 2: canonical values (c_<name>) and their source text (s_<name>) for bad-value checks
    cols2 = []
    for f in fields:
        if f.name in exprs:
            e = exprs[f.name]
            cols2.append(f"{e.value} AS {_id('c_' + f.name)}")
            if e.source is not None:
                cols2.append(f"{e.source} AS {_id('s_' + f.name)}")
        elif f.name != "is_outlier":
            cols2.append(f"CAST(NULL AS {ftypes[f.name]}) AS {_id('c_' + f.name)}")
    if out.attributes is not None:
        used = {e.column for e in exprs.values() if e.column}
        attr_cols = ([c for c in keep if c not in used and c not in source.personal_data]
                     if out.attributes == "rest" else list(out.attributes))
        for c in attr_cols:
            if c not in raw.columns:
                raise SchemaError(f"{name}: attributes: column {c!r} is not in the file")
            if source.personal_data.get(c) == "drop":
                raise MappingError(f"source {source.name!r}: {c!r} is dropped as personal data "
                                   "and cannot also be kept in attributes:")
        if attr_cols:
            pack = ", ".join(f"{_id(c)} := {_id(c)}" for c in attr_cols)
            cols2 = [c for c in cols2 if not c.endswith(_id("c_attributes"))]
            cols2.append(f"CAST(to_json(struct_pack({pack})) AS VARCHAR) AS c_attributes")
    layer2 = f"SELECT *, {', '.join(cols2)} FROM l1"
    # layer 3: derived defaults, then rules
    rules = rules_for(out, exprs, ctx.now)
    layer3 = f"SELECT * REPLACE ({', '.join(rules.derive)}) FROM l2" if rules.derive else \
        "SELECT * FROM l2"
    raw_pack = ", ".join(f"{_id(c)} := {_id(c)}" for c in keep) or "_row := _row"
    canon = [f.name for f in fields if f.name != "is_outlier"]
    select = ["_row", f"{fi} AS _fi", f"'{_q(name)}' AS source"]
    select += [f"{_id('c_' + n)} AS {_id(n)}" for n in canon]
    if out.table == "transactions":
        select.append(f"coalesce({rules.outlier}, false) AS is_outlier")
    select += [
        f"{rules.rule_case()} AS _rule",
        f"{rules.reason_case()} AS _reason",
        f"{rules.bad_field_case()} AS _bad_field",
        f"CASE WHEN ({rules.rule_case()}) IS NOT NULL THEN "
        f"CAST(to_json(struct_pack({raw_pack})) AS VARCHAR) END AS _raw",
        f"hash({', '.join(_id('c_' + n) for n in canon)}) AS _hash",
    ]
    select += [f"coalesce({cond}, false) AS {_id('_flag_' + flag)}"
               for flag, cond in rules.flags.items()]
    return (f"WITH l1 AS ({layer1}), l2 AS ({layer2}), l3 AS ({layer3}) "
            f"SELECT {', '.join(select)} FROM l3")


def _check_personal(raw: RawSource, source: Source) -> None:
    """Refuse a source whose columns look personal but are not declared either way."""
    suspicious = [c for c in raw.columns if c != "_row" and PII_NAME.search(c)
                  and c not in source.personal_data and c not in _not_personal(source)]
    if suspicious:
        raise MappingError(
            f"{raw.name}: column(s) {', '.join(repr(c) for c in suspicious)} look like personal "
            f"data; declare each under personal_data: in source {source.name!r} as drop or "
            "hash (or, if it is not personal, list it under not_personal:)"
        )


def _not_personal(source: Source) -> set[str]:
    return set(source.not_personal)


def _check_bad_values(con: duckdb.DuckDBPyConnection, st: _Staged, raw: RawSource) -> None:
    """Refuse a file in which most values of a column do not parse: the mapping is wrong."""
    rows = con.execute(
        f"SELECT _bad_field, count(*), min(_row) FROM '{_q(st.path)}' "
        "WHERE _rule = 'bad_value' GROUP BY 1 ORDER BY 2 DESC"
    ).fetchall()
    if not rows:
        return
    total = con.execute(f"SELECT count(*) FROM '{_q(st.path)}'").fetchone()[0]
    fname, n, first = rows[0]
    if total and n / total > st.source.max_bad_fraction:
        ex = con.execute(
            f"SELECT _reason FROM '{_q(st.path)}' WHERE _row = {int(first)} AND "
            "_rule = 'bad_value'"
        ).fetchone()[0]
        spec = st.out.columns.get(fname)
        col = f"column {spec.column!r} -> " if spec and spec.column else ""
        hint = guess_hint(con, st.path, fname, spec, st.source)
        raise SchemaError(
            f"{st.name} row {first}, {col}{fname}: {ex}. {n:,} of {total:,} rows "
            f"({n / total:.0%}) fail, over max_bad_fraction {st.source.max_bad_fraction:.0%}, "
            f"so the file is refused. {hint}"
        )


def _check_empty(con: duckdb.DuckDBPyConnection, st: _Staged, inp: _Input) -> None:
    if inp.source.allow_empty:
        return
    n = con.execute(f"SELECT count(*) FROM '{_q(st.path)}'").fetchone()[0]
    if n == 0:
        raise SourceError(
            f"{inp.name}: no data rows (a header only, or nothing after the header). If an "
            f"empty export is normal for this feed, set allow_empty: true in source "
            f"{inp.source.name!r}."
        )


# ---- pass 2: exact duplicates --------------------------------------------------------------
def _find_duplicates(con: duckdb.DuckDBPyConnection, staged: list[_Staged], lake: Lake,
                     ctx: _Ctx) -> dict[str, str]:
    """Create one temp table per output table of (_fi, _row, _dup_of); return their names."""
    out: dict[str, str] = {}
    lake_con = lake.connect(con) if lake.exists() else None
    for table in sorted({s.out.table for s in staged}):
        files = [s.path for s in staged if s.out.table == table]
        canon = [f.name for f in schema.fields(table) if f.name != "is_outlier"]
        src = _union(files)
        eq = " AND ".join(f"a.{_id(c)} IS NOT DISTINCT FROM b.{_id(c)}" for c in canon)
        within = f"""
            WITH acc AS (SELECT * FROM {src} WHERE _rule IS NULL),
            h AS (SELECT _hash FROM acc GROUP BY _hash HAVING count(*) > 1),
            c AS (SELECT acc.* FROM acc SEMI JOIN h USING (_hash)),
            r AS (SELECT _fi, _row, source,
                         row_number() OVER w AS rn,
                         first_value(source) OVER w AS first_source,
                         first_value(_row) OVER w AS first_row
                  FROM c WINDOW w AS (PARTITION BY {', '.join(_id(x) for x in canon)}
                                      ORDER BY _fi, _row))
            SELECT _fi, _row, 'exact duplicate of ' || first_source || ' row ' || first_row
                   AS _dup_of FROM r WHERE rn > 1"""
        name = f"dup_{table}"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {within}")
        if lake_con is not None and lake.files(table):
            against = f"""
                WITH acc AS (SELECT * FROM {src} WHERE _rule IS NULL),
                l AS (SELECT hash({', '.join(_id(c) for c in canon)}) AS _hash, *
                      FROM {table})
                SELECT DISTINCT ON (a._fi, a._row) a._fi, a._row,
                       'exact duplicate of ' || b.source || ' row ' || b.source_row ||
                       ' (already in the lake)' AS _dup_of
                FROM acc a JOIN l b ON a._hash = b._hash AND {eq}
                ORDER BY a._fi, a._row"""
            con.execute(f"""INSERT INTO {name} SELECT * FROM ({against}) x
                            ANTI JOIN {name} d USING (_fi, _row)""")
        out[table] = name
    return out


# ---- pass 3: write partitions and quarantine ---------------------------------------------
def _write(con: duckdb.DuckDBPyConnection, staged: list[_Staged], dups: dict[str, str],
           ctx: _Ctx) -> dict[str, list[tuple[Path, str]]]:
    written: dict[str, list[tuple[Path, str]]] = {}
    meta = (f"TIMESTAMPTZ '{ctx.now.isoformat()}' AS ingested_at, "
            f"'{_q(ctx.batch_id)}' AS batch_id")
    quarantine_parts = []
    for table, dup in dups.items():
        files = [s.path for s in staged if s.out.table == table]
        src = _union(files)
        fields = [f.name for f in schema.fields(table)]
        cols = ", ".join(_id(c) for c in fields)
        lineage = f"source, _row AS source_row, {meta}"
        out_dir = ctx.stage / "out" / table
        tcol = schema.TIME_COLUMN[table]
        body = (f"SELECT {cols}, {lineage} FROM {src} s ANTI JOIN {dup} d USING (_fi, _row) "
                "WHERE s._rule IS NULL")
        partitioned = table != "customers"
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        if partitioned:
            con.execute(
                f"COPY (SELECT *, year({tcol}) AS year, month({tcol}) AS month FROM ({body})) "
                f"TO '{_q(out_dir)}' (FORMAT parquet, PARTITION_BY (year, month), "
                f"FILENAME_PATTERN 'part-{ctx.batch_id}-{{i}}', COMPRESSION zstd)"
            )
        else:
            out_dir.mkdir(parents=True, exist_ok=True)
            con.execute(f"COPY ({body}) TO '{_q(out_dir / f'part-{ctx.batch_id}-0.parquet')}' "
                        "(FORMAT parquet, COMPRESSION zstd)")
        pairs = []
        for p in sorted(out_dir.rglob("*.parquet")):
            rel = Path(table) / p.relative_to(out_dir)
            pairs.append((p, str(rel)))
        written[table] = pairs
        canon = [f.name for f in schema.fields(table) if f.name != "is_outlier"]
        pack = ", ".join(f"{_id(c)} := s.{_id(c)}" for c in canon)
        quarantine_parts.append(
            f"SELECT '{table}' AS \"table\", source, _row AS source_row, {meta}, _rule AS rule, "
            f"_reason AS reason, _raw AS raw FROM {src} s WHERE _rule IS NOT NULL "
            f"UNION ALL SELECT '{table}', s.source, s._row, {meta}, 'duplicate', d._dup_of, "
            f"CAST(to_json(struct_pack({pack})) AS VARCHAR) "
            f"FROM {src} s JOIN {dup} d USING (_fi, _row)"
        )
    qpath = ctx.stage / "out" / "quarantine.parquet"
    con.execute(f"COPY ({' UNION ALL '.join(quarantine_parts)}) TO '{_q(qpath)}' "
                "(FORMAT parquet, COMPRESSION zstd)")
    n = con.execute(f"SELECT count(*) FROM '{_q(qpath)}'").fetchone()[0]
    if n:
        written[lake_mod.QUARANTINE] = [
            (qpath, f"{lake_mod.QUARANTINE}/part-{ctx.batch_id}.parquet")
        ]
    return written


def _account(con: duckdb.DuckDBPyConnection, staged: list[_Staged],
             dups: dict[str, str]) -> list[SourceRecord]:
    records: dict[int, SourceRecord] = {}
    for st in staged:
        dup = dups[st.out.table]
        flag_cols = [c for c in _columns(con, st.path) if c.startswith("_flag_")]
        flag_sql = "".join(f", sum(CASE WHEN s.{c} AND s._rule IS NULL THEN 1 ELSE 0 END)"
                           for c in flag_cols)
        total, quarantined, duplicates, *flags = con.execute(
            f"""SELECT count(*), count(s._rule),
                       count(d._row) FILTER (WHERE s._rule IS NULL) {flag_sql}
                FROM '{_q(st.path)}' s LEFT JOIN {dup} d ON d._fi = s._fi AND d._row = s._row"""
        ).fetchone()
        by_rule = dict(con.execute(
            f"SELECT _rule, count(*) FROM '{_q(st.path)}' WHERE _rule IS NOT NULL GROUP BY 1 "
            "ORDER BY 1").fetchall())
        accepted = total - quarantined - duplicates
        rec = st.record
        key = st.out.table if st.out_index == 0 else f"{st.out.table}#{st.out_index}"
        rec.outputs[key] = {"candidates": total, "accepted": accepted,
                            "quarantined": quarantined, "duplicates": duplicates}
        if st.out_index == 0:
            rec.rows_in, rec.accepted = total, accepted
            rec.quarantined, rec.duplicates = quarantined, duplicates
            rec.rules = {k: int(v) for k, v in by_rule.items()}
            if duplicates:
                rec.rules["duplicate"] = int(duplicates)
            rec.flags = {c.removeprefix("_flag_"): int(v or 0)
                         for c, v in zip(flag_cols, flags, strict=True) if v}
        records[st.fi] = rec
    return [records[k] for k in sorted(records)]


# ---- helpers ----------------------------------------------------------------------------
def _union(files: list[Path]) -> str:
    lst = ", ".join(f"'{_q(p)}'" for p in files)
    return f"read_parquet([{lst}], union_by_name = true)"


def _columns(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM '{_q(path)}'").fetchall()]


def _is_read_error(e: BaseException) -> bool:
    msg = str(e)
    return any(k in msg for k in ("CSV Error", "GZIP", "gzip", "unicode", "Invalid Input Error",
                                  "IO Error", "Maximum line size"))


def _first_line(e: object) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _q(s: object) -> str:
    return str(s).replace("'", "''")


def _id(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


