"""The Delta log actions of the lake's files: add, remove, one commit per table.

Our own Parquet writer writes the files (faster than delta-rs's; see docs/benchmarks.md); this
module commits them through delta-rs's transaction API, with our batch record as the commit
metadata. Only :mod:`personas.lake` calls it: it owns the paths.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from personas.schema import PARTITION_BY, PARTITIONED, delta_schema


def partition_values(rel: str) -> dict[str, str | None]:
    """``transactions/year=2024/month=3/part-x.parquet`` -> {"year": "2024", "month": "3"}."""
    values: dict[str, str | None] = {}
    for piece in rel.split("/")[1:-1]:
        k, _, v = piece.partition("=")
        values[k] = v
    return values


def add_action(root: Path, rel: str) -> Any:
    """The Delta ``add`` action of a data file already in place (``rel`` to the lake root)."""
    import pyarrow.parquet as pq
    from deltalake.transaction import AddAction

    path = root / rel
    st = path.stat()
    stats = {"numRecords": pq.ParquetFile(path).metadata.num_rows}
    inner = rel.split("/", 1)[1]
    return AddAction(
        inner, st.st_size, partition_values(rel), int(st.st_mtime * 1000), True, json.dumps(stats)
    )


def remove_action(rel: str, size: int) -> Any:
    """The Delta ``remove`` action of a file the table references (``rel`` to the lake root)."""
    from deltalake.transaction import RemoveAction

    now = int(time.time() * 1000)
    return RemoveAction(rel.split("/", 1)[1], True, now, size, partition_values(rel))


def commit(tdir: Path, table: str, actions: list[Any], metadata: dict[str, str]) -> int:
    """One Delta commit of ``actions`` to the table in ``tdir`` (created by its first commit);
    return the new version."""
    from deltalake import CommitProperties, DeltaTable

    props = CommitProperties(custom_metadata=metadata)
    dschema = delta_schema(table)
    parts = PARTITION_BY if table in PARTITIONED else None
    if DeltaTable.is_deltatable(str(tdir)):
        DeltaTable(str(tdir)).create_write_transaction(
            actions, mode="append", schema=dschema, partition_by=parts, commit_properties=props
        )
    else:
        from deltalake.transaction import create_table_with_add_actions

        tdir.mkdir(parents=True, exist_ok=True)
        create_table_with_add_actions(
            str(tdir), dschema, actions, mode="error", partition_by=parts, commit_properties=props
        )
    return DeltaTable(str(tdir)).version()


#: table folder -> (identity, latest version, commit infos oldest first): the logs read once
_HISTORY: dict[str, tuple[int, int, list[dict[str, Any]]]] = {}


def history(tdir: Path) -> list[dict[str, Any]]:
    """Every commit's ``commitInfo`` of the table in ``tdir``, oldest first.

    Read from delta-rs once per process and then only the commits added since (every ingest
    reads the batch records of all earlier ones: without this, day-by-day ingests grow
    quadratic). A table deleted and created again (:meth:`personas.lake.Lake.recover`) has a new
    first commit file, and is read again in full.
    """
    from deltalake import DeltaTable

    log = tdir / "_delta_log"
    versions = [int(p.name[:20]) for p in os.scandir(log) if _COMMIT.fullmatch(p.name)]
    if not versions:
        return []
    latest = max(versions)
    first = log / f"{min(versions):020d}.json"
    ident = first.stat().st_mtime_ns
    key = str(tdir.resolve())
    have = _HISTORY.get(key)
    if have and have[0] == ident and have[1] == latest:
        return have[2]
    dt = DeltaTable(str(tdir))
    if have and have[0] == ident and have[1] < latest:
        new = sorted(dt.history(latest - have[1]), key=lambda h: int(h["version"]))
        if [int(h["version"]) for h in new] == list(range(have[1] + 1, latest + 1)):
            _HISTORY[key] = (ident, latest, have[2] + new)
            return _HISTORY[key][2]
    hist = sorted(dt.history(), key=lambda h: int(h["version"]))
    _HISTORY[key] = (ident, int(hist[-1]["version"]) if hist else -1, hist)
    return hist


_COMMIT = re.compile(r"\d{20}\.json")
