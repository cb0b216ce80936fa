"""Is the lake on disk what its Delta logs say? Truncated, deleted or corrupt files, found early.

A lake file damaged after its batch committed (a disk fault, a copy cut short, a hand-deleted
partition) used to surface as DuckDB's "No magic bytes found" three steps later, while
``personas status`` still showed normal counts. :func:`verify` compares every file the tables'
current snapshot references with what the Delta log records (its size) and says, for each
damaged one, its table and partition and how to recover: forget the batch (``personas lake
forget``, a Delta commit removing its files) and ingest its sources again, which the batch's
commit metadata names. The cheap check (existence, size, Parquet magic bytes and footer length)
reads 12 bytes a file and runs before features and in ``status``; the full one also parses every
footer, reads every row group and compares the rows of each batch and table with the rows the
ingest recorded in its commit metadata.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from personas.errors import LakeError
from personas.ingest.mapping import shipped_mappings
from personas.lake import QUARANTINE, Batch, Lake

MAGIC = b"PAR1"


@dataclass(frozen=True)
class Problem:
    """One damaged file (or a batch whose rows disagree with the manifest) and its recovery."""

    batch_id: str
    table: str
    file: str  # relative to the lake root ('' for a batch-level problem)
    what: str

    @property
    def partition(self) -> str:
        parts = [p for p in Path(self.file).parent.parts if "=" in p]
        return "/".join(parts) or "(unpartitioned)"

    def line(self) -> str:
        where = f"{self.table} {self.partition} {Path(self.file).name}" if self.file else self.table
        return f"{where} (batch {self.batch_id}): {self.what}"


def verify(lake: Lake, full: bool = False) -> list[Problem]:
    """Every problem found, in commit order (an empty list: the lake is intact).

    ``full`` also reads each file through pyarrow (footer and every row group) and checks the
    rows of each batch and table against the rows its commit metadata records.
    """
    batches = lake.batches()
    owner = {rel: b.batch_id for b in batches for rels in b.files.values() for rel in rels}
    forgotten = lake.forgotten()
    found: dict[str, list[Problem]] = {}
    on_disk: dict[tuple[str, str], int] = {}  # (batch, table) -> rows in its files
    for table, version in lake.snapshot().items():
        for rel, size, _ in lake.entries(table, version):
            batch_id = owner.get(rel) or _batch_of(rel)
            what = _cheap(lake.root / rel, size)
            if rel not in owner and batch_id in forgotten:
                what = "a file of a forgotten batch, still in the table (a forget cut short)"
            if what is None and full:
                what = _deep(lake.root / rel)
                if what is None:
                    key = (batch_id, table)
                    on_disk[key] = on_disk.get(key, 0) + _rows(lake.root / rel)
            if what:
                found.setdefault(batch_id, []).append(Problem(batch_id, table, rel, what))
    problems = []
    for b in batches:
        problems.extend(found.pop(b.batch_id, []))
        if full and not any(p.batch_id == b.batch_id for p in problems):
            problems.extend(_counts(b, on_disk))
    for rest in found.values():  # files of no known batch (a forget cut short)
        problems.extend(rest)
    return problems


def _batch_of(rel: str) -> str:
    """The batch id in a lake file's name (``part-<batch id>[-n].parquet``)."""
    stem = Path(rel).name.removeprefix("part-").removesuffix(".parquet")
    return "-".join(stem.split("-")[:2])


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def _cheap(path: Path, size: int | None) -> str | None:
    """What is wrong with one file, from its size and its first and last bytes."""
    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        return "the file is missing"
    if size is not None and actual != size:
        return f"{actual:,} bytes where {size:,} were written (truncated or overwritten)"
    if actual < 12:
        return f"only {actual} bytes: not a Parquet file (truncated)"
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(-8, 2)
        tail = fh.read(8)
    if head != MAGIC or tail[4:] != MAGIC:
        return "no Parquet magic bytes at its start or end (truncated or corrupt)"
    footer = int.from_bytes(tail[:4], "little")
    if footer + 12 > actual:
        return f"its footer claims {footer:,} bytes of a {actual:,}-byte file (corrupt)"
    return None


def _deep(path: Path) -> str | None:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        for i in range(pf.num_row_groups):
            pf.read_row_group(i)
    except Exception as e:  # any reader error means the file cannot be used
        return f"cannot be read ({type(e).__name__}: {str(e).splitlines()[0][:160]})"
    return None


def _counts(b: Batch, on_disk: dict[tuple[str, str], int]) -> list[Problem]:
    """Rows in the batch's files per table against its commit metadata (the rows the ingest
    wrote; for a migrated batch, its accepted and quarantined rows)."""
    want: dict[str, int] = {t: w["rows"] for t, w in b.written.items() if "rows" in w}
    if not want:
        for s in b.sources:
            for key, o in s.outputs.items():
                t = key.split("#")[0]
                want[t] = want.get(t, 0) + o.get("accepted", 0)
                q = o.get("quarantined", 0) + o.get("duplicates", 0)
                want[QUARANTINE] = want.get(QUARANTINE, 0) + q
    out = []
    for table, n in sorted(want.items()):
        have = on_disk.get((b.batch_id, table), 0)
        if have != n:
            what = f"{have:,} rows on disk, its commit records {n:,}"
            out.append(Problem(b.batch_id, table, "", what))
    return out


def recovery(lake: Lake, problems: list[Problem]) -> list[str]:
    """The commands that recover from ``problems``: per damaged batch, forget it, re-ingest it."""
    by_id = {b.batch_id: b for b in lake.batches()}
    out = []
    for batch_id in dict.fromkeys(p.batch_id for p in problems):
        b = by_id.get(batch_id)
        if b is None:  # files of a forgotten batch: finish the forget
            out.append(f"personas lake forget {batch_id} --lake {shlex.quote(str(lake.root))}")
            continue
        paths = " ".join(shlex.quote(s.path) for s in b.sources)
        mapping = shlex.quote(b.mapping)
        if b.mapping not in shipped_mappings():  # the commit keeps the name:, not the file
            mapping = f"<the YAML with name: {b.mapping}>"
        out.append(
            f"personas lake forget {batch_id} --lake {shlex.quote(str(lake.root))} && "
            f"personas ingest {paths} --mapping {mapping} "
            f"--lake {shlex.quote(str(lake.root))}"
        )
    return out


def require_intact(lake: Lake) -> None:
    """Raise :class:`LakeError` (one line, with the recovery) if the cheap check finds damage."""
    problems = verify(lake)
    if not problems:
        return
    first = problems[0]
    more = (
        f" (and {len(problems) - 1} more; see `personas lake verify`)" if len(problems) > 1 else ""
    )
    raise LakeError(
        f"lake file damaged: {lake.root / first.file if first.file else lake.root}: "
        f"{first.what}{more}; recover: {recovery(lake, problems)[0]}"
    )
