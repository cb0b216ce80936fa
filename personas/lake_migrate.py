"""Convert a lake of the earlier layout (Parquet plus our ``_manifest/``) into Delta tables.

The data files stay where they are: every manifest entry (one batch) becomes one Delta commit
per table it wrote, with the same commit metadata a new ingest writes (batch id, the batch's
tables, its row accounting and fingerprints, the rows and checksum of the table), so the
converted lake has one Delta version per old batch and table and re-ingesting a known source
still adds nothing. The checksum is read from the files, as the old manifest did not record one.

Restartable: a batch already committed to a table (its id is in the table's log) is not
committed again, and ``_manifest/`` is renamed to ``_manifest.migrated/`` only at the end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from personas.errors import LakeError
from personas.lake import MANIFEST_DIR, Batch, Lake


@dataclass
class MigrateReport:
    """What :func:`migrate` did."""

    batches: int
    commits: int
    files: int
    versions: dict[str, int]


def old_batches(root: Path) -> list[Batch]:
    """The manifest entries of an earlier-layout lake, in commit order."""
    return [
        Batch.from_json(json.loads(p.read_text(encoding="utf-8")))
        for p in sorted((root / MANIFEST_DIR).glob("*.json"))
    ]


def migrate(lake: Lake | str | Path) -> MigrateReport:
    """Turn the earlier layout under ``lake`` into Delta tables, in place (see the module)."""
    lake = lake if isinstance(lake, Lake) else Lake(lake)
    mdir = lake.root / MANIFEST_DIR
    if not mdir.is_dir():
        raise LakeError(
            f"{lake.root} has no {MANIFEST_DIR}/ folder: nothing to migrate "
            "(a lake written by this release is already made of Delta tables)"
        )
    commits = files = 0
    with lake.lock():
        done = {b.batch_id for b in lake.batches()}
        batches = old_batches(lake.root)
        for b in batches:
            if b.batch_id in done:
                continue
            for table, rels in b.files.items():
                missing = [r for r in rels if not (lake.root / r).is_file()]
                if missing:
                    raise LakeError(
                        f"batch {b.batch_id} of {lake.root} lists {missing[0]}, which is not "
                        "there; restore the file (or the lake from a backup) and run "
                        "`personas lake migrate` again"
                    )
                b.written[table] = _tally(lake.root, rels)
                files += len(rels)
            # an earlier, interrupted migration may have committed some of this batch's tables
            commits += lake.commit_existing(b)
        lake.recover()
        mdir.rename(lake.root / f"{MANIFEST_DIR}.migrated")
    return MigrateReport(len(batches), commits, files, lake.snapshot())


def _tally(root: Path, rels: list[str]) -> dict[str, int]:
    rows = checksum = 0
    for r in rels:
        col = pq.read_table(root / r, columns=["source_row"])["source_row"]
        rows += len(col)
        checksum += pc.sum(col).as_py() or 0
    return {"rows": rows, "checksum": checksum}
