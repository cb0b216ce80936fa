"""The Parquet lake: Hive-partitioned, append-only tables committed through a manifest.

Why a manifest: a reader must never see half of an ingest. Data files are written to
``_staging/<batch>/`` first, moved into their partitions, and only then does one small JSON file
appear in ``_manifest/`` (written to a temporary name and renamed, which is atomic on POSIX).
Readers take their file lists from the manifest, so files of a batch that was killed before its
manifest entry landed are invisible, and :meth:`Lake.recover` deletes them on the next ingest.

This module is the only place that knows file paths inside the lake.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from personas import schema
from personas.errors import LakeError
from personas.sqltext import quote

MANIFEST_DIR = "_manifest"
STAGING_DIR = "_staging"
LOCK_FILE = ".lock"
QUARANTINE = "quarantine"


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
    """One committed ingest: its sources, the files it added and when."""

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

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Batch:
        d = dict(d)
        d["sources"] = [SourceRecord(**s) for s in d["sources"]]
        return cls(**d)

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def new_batch_id() -> str:
    """Sortable, unique batch id: UTC time then a random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:8]


class Lake:
    """A lake directory: ``transactions/ customers/ events/ feedback/ quarantine/ _manifest/``."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Lake({str(self.root)!r})"

    # ---- reading -------------------------------------------------------------------------
    def exists(self) -> bool:
        return (self.root / MANIFEST_DIR).is_dir()

    def batches(self) -> list[Batch]:
        """Committed batches in commit order."""
        mdir = self.root / MANIFEST_DIR
        if not mdir.is_dir():
            return []
        out = []
        for p in sorted(mdir.glob("*.json")):
            with open(p, encoding="utf-8") as fh:
                out.append(Batch.from_json(json.load(fh)))
        return out

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

    def files(self, table: str, partitions: set[tuple[int, int]] | None = None) -> list[Path]:
        """Committed data files of ``table`` (``quarantine`` included).

        ``partitions`` keeps only files in those (year, month) partitions.
        """
        out = [self.root / f for b in self.batches() for f in b.files.get(table, [])]
        if partitions is not None:
            want = {f"year={y}/month={m}" for y, m in partitions}
            out = [p for p in out if f"{p.parent.parent.name}/{p.parent.name}" in want]
        return out

    def tables(self) -> list[str]:
        """Canonical tables that hold at least one committed file."""
        return [t for t in schema.TABLES if self.files(t)]

    def connect(
        self,
        con: duckdb.DuckDBPyConnection | None = None,
        memory_limit: str | None = None,
        threads: int | None = None,
    ) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with one view per committed table.

        Tables with no files get an empty view of the right schema, so feature SQL can always
        refer to them and decide from :meth:`tables` what to compute.
        """
        con = con or connect(memory_limit=memory_limit, threads=threads)
        for table in [*schema.TABLES, QUARANTINE]:
            files = self.files(table)
            if files:
                lst = ", ".join(f"'{quote(str(f))}'" for f in files)
                con.execute(
                    f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet([{lst}], "
                    "hive_partitioning = false, union_by_name = true)"
                )
            else:
                lineage = schema.LINEAGE if table in schema.TABLES else ()
                cols = ", ".join(
                    f'CAST(NULL AS {schema.duckdb_type(f.type)}) AS "{f.name}"'
                    for f in (*schema.fields(table), *lineage)
                )
                con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT {cols} WHERE false")
        return con

    def counts(self) -> dict[str, int]:
        """Rows per table as recorded in the manifest (accepted rows)."""
        out: dict[str, int] = {t: 0 for t in schema.TABLES}
        for b in self.batches():
            for s in b.sources:
                for key, o in s.outputs.items():
                    t = key.split("#")[0]
                    out[t] = out.get(t, 0) + o.get("accepted", 0)
        return out

    def fingerprint(self) -> str:
        """A short hash of the committed lake state (the ordered batch ids)."""
        import hashlib

        h = hashlib.sha256("\n".join(b.batch_id for b in self.batches()).encode())
        return h.hexdigest()[:16]

    # ---- writing -------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive writer lock: two ingests into one lake would race on the manifest."""
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
        """Delete what an interrupted ingest left behind; return the removed paths.

        Safe because nothing outside the manifest is ever read.
        """
        removed: list[Path] = []
        staging = self.root / STAGING_DIR
        if staging.exists():
            for p in sorted(staging.iterdir()):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
        committed = {
            str(self.root / f) for b in self.batches() for fs in b.files.values() for f in fs
        }
        for table in [*schema.TABLES, QUARANTINE]:
            tdir = self.root / table
            if not tdir.exists():
                continue
            for p in sorted(tdir.rglob("*.parquet")):
                if str(p) not in committed:
                    p.unlink()
                    removed.append(p)
        mdir = self.root / MANIFEST_DIR
        if mdir.exists():
            for p in mdir.glob(".*.tmp"):
                p.unlink()
                removed.append(p)
        return removed

    def commit(self, batch: Batch, staged: dict[str, list[tuple[Path, str]]]) -> Batch:
        """Move staged files into place, then write the manifest entry (the commit point).

        ``staged`` maps table -> [(staged file, final path relative to the lake root)].
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
        pause_point("commit:before-manifest")
        mdir = self.root / MANIFEST_DIR
        mdir.mkdir(parents=True, exist_ok=True)
        tmp = mdir / f".{batch.batch_id}.json.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(batch.to_json(), fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, mdir / f"{batch.batch_id}.json")
        shutil.rmtree(self.root / STAGING_DIR / batch.batch_id, ignore_errors=True)
        return batch

    def forget(self, batch_id: str) -> Batch:
        """Remove one committed batch: its manifest entry first (the uncommit), then its files.

        The way back from a damaged lake file (see :mod:`personas.lakecheck`): once the batch is
        forgotten its sources are no longer known, so ingesting them again adds their rows anew.
        """
        with self.lock():
            entry = self.root / MANIFEST_DIR / f"{batch_id}.json"
            match = [b for b in self.batches() if b.batch_id == batch_id]
            if not match:
                known = ", ".join(b.batch_id for b in self.batches()[-3:]) or "none"
                raise LakeError(
                    f"no batch {batch_id!r} in the lake {self.root} (latest: {known}); "
                    "`personas lake verify` names the batches of damaged files"
                )
            entry.unlink()
            for rels in match[0].files.values():
                for rel in rels:
                    (self.root / rel).unlink(missing_ok=True)
            return match[0]


def pause_point(name: str) -> None:
    """Test hook for kill tests: stop at a named point of an ingest (no-op in normal use).

    With ``PERSONAS_TEST_PAUSE=<name>`` set, the process writes its pid to the file named by
    ``PERSONAS_TEST_PAUSE_FILE`` and sleeps (``PERSONAS_TEST_PAUSE_SECONDS``, default 60), so a
    test can kill it at exactly that point. Points: ``staged`` (all rows staged, nothing
    written), ``commit:moved-one`` (one data file moved into its partition),
    ``commit:before-manifest`` (all files moved, manifest entry not yet written).
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
