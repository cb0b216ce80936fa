"""Lookup files (a mapping's ``lookups:``) joined onto a source's rows.

A lookup is read once per ingest into a table keyed by its key column, checked to hold one
row per key, and left-joined onto the raw rows, so it adds columns but never rows.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from personas.errors import MappingError, SourceError
from personas.ingest.mapping import Lookup, Source
from personas.ingest.rawsource import RawSource
from personas.ingest.readers import open_source
from personas.sqltext import ident


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
