"""The lake as Delta tables: any reader sees what the ingest reported, versions travel in time."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.compute as pc
from deltalake import DeltaTable

from personas.ingest.batch import ingest
from personas.lake import ALL_TABLES, META_BATCH_ID, META_CHECKSUM, META_ROWS, Lake


def _reported(lake: Lake) -> dict[str, tuple[int, int]]:
    """Rows and checksum per table as the ingests reported them (the batches' accounting)."""
    out: dict[str, list[int]] = {}
    for b in lake.batches():
        for t, w in b.written.items():
            have = out.setdefault(t, [0, 0])
            have[0] += w["rows"]
            have[1] += w["checksum"]
    return {t: (n, s) for t, (n, s) in out.items()}


def test_every_delta_reader_sees_what_the_ingest_reported(demo_lake: Path) -> None:
    lake = Lake(demo_lake)
    snap = lake.snapshot()
    assert set(snap) == set(ALL_TABLES)
    reported = _reported(lake)
    accepted = lake.counts()
    quarantined = sum(s.quarantined + s.duplicates for b in lake.batches() for s in b.sources)
    con = duckdb.connect()
    for table, version in snap.items():
        dt = DeltaTable(str(demo_lake / table), version=version)
        rows = dt.to_pyarrow_table(columns=["source_row"])["source_row"]
        by_delta = (len(rows), pc.sum(rows).as_py())
        files = dt.file_uris()
        by_duckdb = con.execute(
            "SELECT count(*), sum(source_row) FROM read_parquet(?)", [files]
        ).fetchone()
        assert by_delta == tuple(by_duckdb) == reported[table], table
        assert by_delta[0] == (quarantined if table == "quarantine" else accepted[table])
        # the commit itself carries the accounting, for readers that know nothing of ours
        meta = dt.history(1)[0]
        assert meta[META_BATCH_ID] == lake.batches()[-1].batch_id
        assert int(meta[META_ROWS]) == reported[table][0]
        assert int(meta[META_CHECKSUM]) == reported[table][1]
    # our own views read the same snapshot
    view = lake.connect()
    assert (
        view.execute("SELECT count(*) FROM transactions").fetchone()[0] == accepted["transactions"]
    )


def test_an_old_version_reads_as_it_was(demo_files: list[Path], tmp_path: Path) -> None:
    first = [f for f in demo_files if f.name.startswith(("customers", "transactions"))]
    lake = Lake(tmp_path / "lake")
    ingest(first, "demo", lake)
    before = lake.snapshot()
    n_tx = lake.connect().execute("SELECT count(*) FROM transactions").fetchone()[0]
    assert lake.tables() == ["transactions", "customers"]
    ingest([f for f in demo_files if f not in first], "demo", lake)
    after = lake.snapshot()
    assert after["events"] == 0 and before.items() <= after.items()  # untouched tables stay
    con = lake.connect(versions=before)
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM transactions").fetchone()[0] == n_tx
    assert lake.tables(versions=before) == ["transactions", "customers"]
    assert lake.connect().execute("SELECT count(*) FROM events").fetchone()[0] > 0


def test_an_incomplete_batch_is_invisible_and_recovered(
    demo_files: list[Path], tmp_path: Path
) -> None:
    """A batch whose quarantine commit landed but not its transactions commit (the kill test
    of ``tests/ingest/test_atomic.py`` does this with a real process): invisible, then undone.
    """
    src = [f for f in demo_files if f.name.startswith(("customers", "transactions"))]
    lake = Lake(tmp_path / "lake")
    ingest(src[:1], "demo", lake)
    snap, batches = lake.snapshot(), lake.batches()
    ingest(src[1:], "demo", lake)
    assert set(lake.batches()[-1].versions) == {"transactions", "quarantine"}
    log = sorted((lake.root / "transactions" / "_delta_log").glob("*.json"))
    assert len(log) == 1
    log[-1].unlink()  # the transactions commit never happened; its files are in place
    assert lake.batches() == batches and lake.snapshot() == snap
    assert lake.files("transactions") == []
    assert lake.connect().execute("SELECT count(*) FROM quarantine").fetchone()[0] == sum(
        s.quarantined + s.duplicates for b in batches for s in b.sources
    )
    with lake.lock():
        removed = lake.recover()
    assert any(p.suffix == ".parquet" and "transactions" in p.parts for p in removed)
    assert not list((lake.root / "transactions").rglob("*.parquet"))
    if "quarantine" in snap:
        assert DeltaTable(str(lake.root / "quarantine")).history(1)[0]["operation"] == "RESTORE"
    else:
        assert not (lake.root / "quarantine").exists()
    assert lake.snapshot() == snap
    again = ingest(src[1:], "demo", lake)
    assert again.batch_id and len(lake.batches()) == 2 and "transactions" in lake.snapshot()
