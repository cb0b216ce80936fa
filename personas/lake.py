"""The lake: one Delta Lake table per canonical table (and the quarantine), Hive-partitioned.

Each ingest is one Delta commit per table it touches (``transactions/_delta_log/`` ...), and
every such commit carries the whole batch record in its commit metadata: the batch id, the
tables the batch touches, the row accounting and fingerprints of its sources, and the rows and
checksum written to that table. Any Delta reader (delta-rs, Spark with the Delta connector,
DuckDB over the snapshot's file list) sees the standard tables.

Why a batch must be complete to count: Delta commits one table at a time, and an ingest touches
several. A batch counts only once every table it names holds its commit, so this module's
readers (:meth:`Lake.snapshot`) never see half an ingest: each table is read at its newest
version whose batch is complete. A killed ingest leaves at most some tables' commits of an
incomplete batch (invisible here); the next ingest's :meth:`Lake.recover` restores those
tables to their last complete version and deletes the files nobody references.

This module is the only place that knows file paths inside the lake.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from personas import lake_delta, schema
from personas.errors import LakeError
from personas.schema import PARTITION_BY, QUARANTINE_SCHEMA, table_schema
from personas.schema import QUARANTINE_TABLE as QUARANTINE
from personas.sqltext import quote

__all__ = ["PARTITION_BY", "QUARANTINE", "QUARANTINE_SCHEMA", "Lake", "table_schema"]

STAGING_DIR = "_staging"
LOCK_FILE = ".lock"
DELTA_LOG = "_delta_log"
#: The folder of the lake layout before Delta (migrated by :func:`migrate`).
MANIFEST_DIR = "_manifest"
#: Commit-metadata keys (``commitInfo`` of every ingest commit).
META_BATCH_ID = "personas.batch_id"
META_TABLES = "personas.tables"
META_BATCH = "personas.batch"
META_ROWS = "personas.rows"
META_CHECKSUM = "personas.checksum"
#: Commit-metadata key of a ``personas lake forget`` commit (the batch id it removes).
META_FORGET = "personas.forget"


@dataclass
class SourceRecord:
    """Row accounting for one source file (or SQL query) within a batch."""

    source: str
    path: str
    fingerprint: str
    bytes: int
    table: str
    rows_in: int = 0
    accepted: int = 0
    quarantined: int = 0
    duplicates: int = 0
    rules: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    def balanced(self) -> bool:
        return self.rows_in == self.accepted + self.quarantined + self.duplicates


@dataclass
class Batch:
    """One committed ingest: its sources, the files it added, the table versions it made.

    ``written`` holds, per table, the rows the batch wrote and their checksum (the sum of
    ``source_row``), as the writer counted them; ``versions`` the Delta version of each table
    that holds the batch.
    """

    batch_id: str
    committed_at: str
    mapping: str
    mapping_hash: str
    schema_version: int
    sources: list[SourceRecord]
    files: dict[str, list[str]]
    seconds: float
    #: bytes of each file as written (relative path -> size); absent in older manifests
    sizes: dict[str, int] = field(default_factory=dict)
    written: dict[str, dict[str, int]] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Batch:
        d = dict(d)
        d["sources"] = [SourceRecord(**s) for s in d["sources"]]
        return cls(**d)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def new_batch_id() -> str:
    """Sortable, unique batch id: UTC time then a random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:8]


@dataclass
class _Commit:
    table: str
    version: int
    batch_id: str
    tables: tuple[str, ...]
    meta: dict[str, Any]
    forget: bool = False  # a commit removing the batch's files (personas lake forget)


class Lake:
    """A lake directory: Delta tables ``transactions/ customers/ events/ feedback/ quarantine/``."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Lake({str(self.root)!r})"

    # ---- reading -------------------------------------------------------------------------
    def exists(self) -> bool:
        return any(self._is_delta(t) for t in ALL_TABLES)

    def _is_delta(self, table: str) -> bool:
        log = self.root / table / DELTA_LOG
        return log.is_dir() and any(log.glob("*.json"))

    def _commits(self) -> list[_Commit]:
        """Every ingest commit of every table, from the Delta logs."""

        out = []
        for table in ALL_TABLES:
            if not self._is_delta(table):
                continue
            for h in lake_delta.history(self.root / table):
                if META_FORGET in h:
                    out.append(_Commit(table, int(h["version"]), h[META_FORGET], (), h, True))
                if META_BATCH_ID not in h:
                    continue
                out.append(
                    _Commit(
                        table,
                        int(h["version"]),
                        h[META_BATCH_ID],
                        tuple(h.get(META_TABLES, table).split(",")),
                        h,
                    )
                )
        return out

    def _complete(self) -> tuple[list[_Commit], set[str]]:
        """Every commit, and the ids of the batches whose every table holds their commit."""
        commits = self._commits()
        seen: dict[str, set[str]] = {}
        for c in commits:
            if not c.forget:
                seen.setdefault(c.batch_id, set()).add(c.table)
        complete = {
            c.batch_id for c in commits if not c.forget and set(c.tables) <= seen[c.batch_id]
        }
        return commits, complete

    def snapshot(self) -> dict[str, int]:
        """Table -> the Delta version readers use: its newest version whose batch is complete
        (or that forgot a batch)."""
        commits, complete = self._complete()
        out: dict[str, int] = {}
        for c in commits:
            if c.forget or c.batch_id in complete:
                out[c.table] = max(out.get(c.table, -1), c.version)
        return dict(sorted(out.items()))

    def batches(self) -> list[Batch]:
        """Committed (complete) batches in commit order, forgotten ones left out."""
        commits, complete = self._complete()
        forgotten = {c.batch_id for c in commits if c.forget}
        found: dict[str, Batch] = {}
        for c in sorted(commits, key=lambda c: (c.batch_id, c.table)):
            if c.forget or c.batch_id not in complete or c.batch_id in forgotten:
                continue
            b = found.get(c.batch_id)
            if b is None:
                b = found[c.batch_id] = Batch.from_json(json.loads(c.meta[META_BATCH]))
            b.versions[c.table] = c.version
        return sorted(found.values(), key=lambda b: b.batch_id)

    def forgotten(self) -> set[str]:
        """Ids of the batches ``personas lake forget`` removed (or began to)."""
        return {c.batch_id for c in self._commits() if c.forget}

    def fingerprints(self) -> dict[str, str]:
        """Content hash -> batch id of every source already ingested."""
        return {s.fingerprint: b.batch_id for b in self.batches() for s in b.sources}

    def lineage(self) -> list[dict[str, Any]]:
        """Row accounting per ingested source, in commit order (the report's data section).

        Only the source's name is kept, never its full path or connection string (which could
        carry a user name or a password).
        """
        return [
            {
                "batch_id": b.batch_id,
                "committed_at": b.committed_at,
                "mapping": b.mapping,
                "source": s.source,
                "table": s.table,
                "rows_in": s.rows_in,
                "accepted": s.accepted,
                "quarantined": s.quarantined,
                "duplicates": s.duplicates,
                "rules": dict(s.rules),
                "flags": dict(s.flags),
            }
            for b in self.batches()
            for s in b.sources
        ]

    def files(
        self,
        table: str,
        partitions: set[tuple[int, int]] | None = None,
        version: int | None = None,
    ) -> list[Path]:
        """Data files of ``table`` (``quarantine`` included) at ``version``, in commit order.

        ``version`` defaults to the table's version in :meth:`snapshot`; ``partitions`` keeps
        only files in those (year, month) partitions.
        """
        from deltalake import DeltaTable

        if version is None:
            version = self.snapshot().get(table)
        if version is None:
            return []
        uris = DeltaTable(str(self.root / table), version=version).file_uris()
        # names start with part-<batch id>: sortable by time, so this is commit order
        out = sorted((Path(u.removeprefix("file://")) for u in uris), key=lambda p: (p.name, p))
        if partitions is not None:
            want = {f"year={y}/month={m}" for y, m in partitions}
            out = [p for p in out if f"{p.parent.parent.name}/{p.parent.name}" in want]
        return out

    def entries(self, table: str, version: int | None = None) -> list[tuple[str, int, int]]:
        """(path relative to the lake root, bytes, rows) of each file the Delta log of ``table``
        references at ``version`` (default: the snapshot's), as the log records them."""
        from deltalake import DeltaTable

        if version is None:
            version = self.snapshot().get(table)
        if version is None:
            return []
        acts = pa.table(DeltaTable(str(self.root / table), version=version).get_add_actions())
        rows = acts.column("num_records").to_pylist() if "num_records" in acts.column_names else []
        return sorted(
            (f"{table}/{p}", int(n), int(r) if r is not None else -1)
            for p, n, r in zip(
                acts.column("path").to_pylist(),
                acts.column("size_bytes").to_pylist(),
                rows or [None] * acts.num_rows,
                strict=True,
            )
        )

    def tables(self, versions: dict[str, int] | None = None) -> list[str]:
        """Canonical tables that hold at least one committed file."""
        versions = self.snapshot() if versions is None else versions
        return [t for t in schema.TABLES if t in versions and self.files(t, version=versions[t])]

    def connect(
        self,
        con: duckdb.DuckDBPyConnection | None = None,
        memory_limit: str | None = None,
        threads: int | None = None,
        versions: dict[str, int] | None = None,
    ) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with one view per table, at ``versions`` (default: the snapshot).

        DuckDB reads the snapshot's Parquet file list (its Delta extension cannot be installed
        here). Tables with no files get an empty view of the right schema, so feature SQL can
        always refer to them and decide from :meth:`tables` what to compute.
        """
        con = con or connect(memory_limit=memory_limit, threads=threads)
        versions = self.snapshot() if versions is None else versions
        for table in ALL_TABLES:
            files = self.files(table, version=versions[table]) if table in versions else []
            if files:
                lst = ", ".join(f"'{quote(str(f))}'" for f in files)
                con.execute(
                    f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet([{lst}], "
                    "hive_partitioning = false, union_by_name = true)"
                )
            else:
                cols = ", ".join(
                    f'CAST(NULL AS {schema.duckdb_type(f.type)}) AS "{f.name}"'
                    for f in table_schema(table)
                    if f.name not in PARTITION_BY
                )
                con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT {cols} WHERE false")
        return con

    def counts(self) -> dict[str, int]:
        """Rows per table as recorded in the batches (accepted rows)."""
        out: dict[str, int] = {t: 0 for t in schema.TABLES}
        for b in self.batches():
            for s in b.sources:
                for key, o in s.outputs.items():
                    t = key.split("#")[0]
                    out[t] = out.get(t, 0) + o.get("accepted", 0)
        return out

    def fingerprint(self, versions: dict[str, int] | None = None) -> str:
        """A short hash of the committed lake state (the ordered batch ids) at ``versions``."""
        batches = self.batches()
        if versions is not None:
            batches = [
                b
                for b in batches
                if all(t in versions and v <= versions[t] for t, v in b.versions.items())
            ]
        h = hashlib.sha256("\n".join(b.batch_id for b in batches).encode())
        return h.hexdigest()[:16]

    # ---- writing -------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive writer lock: two ingests into one lake would race on the Delta logs."""
        self.root.mkdir(parents=True, exist_ok=True)
        fh = open(self.root / LOCK_FILE, "a+")  # noqa: SIM115 - held for the with-block
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LakeError(
                    f"the lake {self.root} is being written by another process; "
                    "wait for it to finish (or remove a stale lock by deleting "
                    f"{self.root / LOCK_FILE} if no personas process is running)"
                ) from None
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()

    def staging(self, batch_id: str) -> Path:
        p = self.root / STAGING_DIR / batch_id
        p.mkdir(parents=True, exist_ok=True)
        return p

    def recover(self) -> list[Path]:
        """Undo what an interrupted ingest left behind; return the removed paths.

        Tables holding commits of an incomplete batch are restored to their last complete
        version (a new Delta commit; a table that an incomplete batch created is removed), then
        every data file that the tables' current versions do not reference is deleted. Call it
        with the writer lock held.
        """
        from deltalake import DeltaTable

        if (self.root / MANIFEST_DIR).is_dir() and not self.exists():
            raise LakeError(
                f"the lake {self.root} has the layout of an earlier release (_manifest/); "
                "convert it first: personas lake migrate"
            )
        removed: list[Path] = []
        self._finish_forgets()
        staging = self.root / STAGING_DIR
        if staging.exists():
            for p in sorted(staging.iterdir()):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
        commits, complete = self._complete()
        good = self.snapshot()
        for table in ALL_TABLES:
            tdir = self.root / table
            if not tdir.exists():
                continue
            bad = [c for c in commits if c.table == table and c.batch_id not in complete]
            if table not in good:  # no complete batch: made by an interrupted ingest
                removed.extend(sorted(tdir.rglob("*.parquet")))
                shutil.rmtree(tdir)
                continue
            if bad and max(c.version for c in bad) > good[table]:
                DeltaTable(str(tdir)).restore(good[table])
            keep = set(self._uris(table))
            for p in sorted(tdir.rglob("*.parquet")):
                if str(p) not in keep and DELTA_LOG not in p.parts:
                    p.unlink()
                    removed.append(p)
        return removed

    def _uris(self, table: str) -> list[str]:
        from deltalake import DeltaTable

        return [u.removeprefix("file://") for u in DeltaTable(str(self.root / table)).file_uris()]

    def commit(self, batch: Batch, staged: dict[str, list[tuple[Path, str]]]) -> Batch:
        """Move staged files into place, then one Delta commit per table (the last is the commit
        point of the batch).

        ``staged`` maps table -> [(staged file, final path relative to the lake root)]. A batch
        that wrote no file at all still commits (an empty commit to the quarantine), so that its
        sources are known and a re-ingest skips them.
        """
        moved = 0
        for table, pairs in staged.items():
            rels = []
            for src, rel in pairs:
                dst = self.root / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
                batch.sizes[rel] = dst.stat().st_size
                rels.append(rel)
                moved += 1
                if moved == 1:
                    pause_point("commit:moved-one")
            batch.files[table] = rels
        tables = sorted(t for t, fs in batch.files.items() if fs) or [QUARANTINE]
        batch.versions = {}
        for i, table in enumerate(tables):
            if i == 1:
                pause_point("commit:one-table")
            batch.versions[table] = self._commit_table(table, batch, tables)
        shutil.rmtree(self.root / STAGING_DIR / batch.batch_id, ignore_errors=True)
        return batch

    def forget(self, batch_id: str) -> Batch:
        """Remove one committed batch: per table it touched, a Delta commit removing its files
        (the first such commit is the uncommit), then the files themselves.

        The way back from a damaged lake file (see :mod:`personas.lakecheck`): once the batch is
        forgotten its sources are no longer known, so ingesting them again adds their rows anew.
        A forget cut short is finished by the next ``forget`` or ingest (:meth:`recover`).
        """
        with self.lock():
            self.recover()  # also finishes a forget cut short
            commits = self._commits()
            match = [
                Batch.from_json(json.loads(c.meta[META_BATCH]))
                for c in commits
                if c.batch_id == batch_id and not c.forget
            ]
            if any(c.forget and c.batch_id == batch_id for c in commits) and match:
                return match[0]  # forgotten already
            if not match:
                known = ", ".join(b.batch_id for b in self.batches()[-3:]) or "none"
                raise LakeError(
                    f"no batch {batch_id!r} in the lake {self.root} (latest: {known}); "
                    "`personas lake verify` names the batches of damaged files"
                )
            for table in sorted({c.table for c in commits if c.batch_id == batch_id}):
                self._remove_batch(table, batch_id)
            return match[0]

    def _finish_forgets(self) -> None:
        """Remove the files of forgotten batches from tables a cut-short forget did not reach."""
        commits = self._commits()
        done = {(c.batch_id, c.table) for c in commits if c.forget}
        forgotten = {b for b, _ in done}
        for c in commits:
            if not c.forget and c.batch_id in forgotten and (c.batch_id, c.table) not in done:
                self._remove_batch(c.table, c.batch_id)
                done.add((c.batch_id, c.table))

    def _remove_batch(self, table: str, batch_id: str) -> None:
        """One Delta commit removing ``batch_id``'s files from ``table``; then delete them."""
        from deltalake import DeltaTable

        version = DeltaTable(str(self.root / table)).version()
        mine = [
            (rel, size)
            for rel, size, _ in self.entries(table, version)
            if Path(rel).name.startswith(f"part-{batch_id}")
        ]
        actions = [lake_delta.remove_action(rel, size) for rel, size in mine]
        lake_delta.commit(self.root / table, table, actions, {META_FORGET: batch_id})
        for rel, _ in mine:
            (self.root / rel).unlink(missing_ok=True)

    def commit_existing(self, batch: Batch) -> int:
        """Commit a batch whose files are in place already (a migration); return the commits.

        Tables that hold the batch already are skipped, so an interrupted migration resumes.
        """
        have = {c.table for c in self._commits() if c.batch_id == batch.batch_id}
        tables = sorted(t for t, fs in batch.files.items() if fs) or [QUARANTINE]
        todo = [t for t in tables if t not in have]
        for table in todo:
            batch.versions[table] = self._commit_table(table, batch, tables)
        return len(todo)

    def _commit_table(self, table: str, batch: Batch, tables: list[str]) -> int:
        actions = [lake_delta.add_action(self.root, rel) for rel in batch.files.get(table, [])]
        written = batch.written.get(table, {})
        meta = {
            META_BATCH_ID: batch.batch_id,
            META_TABLES: ",".join(tables),
            META_BATCH: json.dumps(batch.to_json(), sort_keys=True),
            META_ROWS: str(written.get("rows", 0)),
            META_CHECKSUM: str(written.get("checksum", 0)),
        }
        return lake_delta.commit(self.root / table, table, actions, meta)


ALL_TABLES = (*schema.TABLES, QUARANTINE)


def pause_point(name: str) -> None:
    """Test hook for kill tests: stop at a named point of an ingest (no-op in normal use).

    With ``PERSONAS_TEST_PAUSE=<name>`` set, the process writes its pid to the file named by
    ``PERSONAS_TEST_PAUSE_FILE`` and sleeps (``PERSONAS_TEST_PAUSE_SECONDS``, default 60), so a
    test can kill it at exactly that point. Points: ``staged`` (all rows staged, nothing
    written), ``commit:moved-one`` (one data file moved into its partition),
    ``commit:one-table`` (all files moved, the first of the batch's Delta commits made, the
    others not).
    """
    if os.environ.get("PERSONAS_TEST_PAUSE") != name:
        return
    marker = os.environ.get("PERSONAS_TEST_PAUSE_FILE")
    if marker:  # written whole, then renamed: the waiting test never reads an empty file
        tmp = Path(f"{marker}.{os.getpid()}.tmp")
        tmp.write_text(str(os.getpid()))
        tmp.replace(marker)
    time.sleep(float(os.environ.get("PERSONAS_TEST_PAUSE_SECONDS", "60")))


def connect(
    memory_limit: str | None = None, threads: int | None = None, temp_directory: str | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with UTC session time zone and optional resource limits."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # inside Jupyter without ipywidgets DuckDB refuses to touch this setting
    with contextlib.suppress(duckdb.Error):
        con.execute("SET enable_progress_bar = false")
    if memory_limit:
        con.execute(f"SET memory_limit = '{quote(memory_limit)}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if temp_directory:
        con.execute(f"SET temp_directory = '{quote(temp_directory)}'")
    return con
