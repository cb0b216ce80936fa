"""``personas lake migrate``: a lake of the earlier layout (Parquet + _manifest/) to Delta.

``tests/data/lake_v0`` was written by the release before Delta (commit ef461c1): the demo
generator (150 customers, seed 7) ingested in two batches, customers + transactions, then
events + feedback.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from personas.errors import LakeError
from personas.ingest.batch import ingest
from personas.lake import MANIFEST_DIR, Lake
from personas.lake_migrate import migrate, old_batches
from tests.conftest import REPO

OLD = REPO / "tests" / "data" / "lake_v0"


@pytest.fixture
def old_lake(tmp_path: Path) -> Path:
    return Path(shutil.copytree(OLD, tmp_path / "lake"))


def _accepted(batches) -> dict[str, int]:
    out: dict[str, int] = {}
    for b in batches:
        for s in b.sources:
            for key, o in s.outputs.items():
                out[key.split("#")[0]] = out.get(key.split("#")[0], 0) + o["accepted"]
    return out


def test_migrate_keeps_batches_rows_and_fingerprints(old_lake: Path) -> None:
    old = old_batches(old_lake)
    assert len(old) == 2 and not Lake(old_lake).exists()
    with pytest.raises(LakeError, match="personas lake migrate"):
        ingest([], "demo", old_lake)
    report = migrate(old_lake)
    lake = Lake(old_lake)
    assert report.batches == 2 and report.commits == 5
    assert [b.batch_id for b in lake.batches()] == [b.batch_id for b in old]
    assert lake.fingerprints() == {s.fingerprint: b.batch_id for b in old for s in b.sources}
    con = lake.connect()
    accepted = _accepted(old)
    for t, n in accepted.items():
        assert con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] == n
    q = sum(s.quarantined + s.duplicates for b in old for s in b.sources)
    assert con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == q
    for t in accepted:
        assert {str(p.relative_to(old_lake)) for p in lake.files(t)} == {
            f for b in old for f in b.files.get(t, [])
        }
    assert not (old_lake / MANIFEST_DIR).exists()
    assert (old_lake / f"{MANIFEST_DIR}.migrated").is_dir()
    with pytest.raises(LakeError, match="nothing to migrate"):
        migrate(old_lake)


def test_an_interrupted_migration_resumes(old_lake: Path, tmp_path: Path) -> None:
    lake = Lake(old_lake)
    first = old_batches(old_lake)[0]
    first.written = {t: {"rows": 0, "checksum": 0} for t in first.files}
    lake.commit_existing(first)  # as if killed after the first batch's commits
    report = migrate(old_lake)
    assert report.commits == 2  # only the second batch's tables
    fresh = Path(shutil.copytree(OLD, tmp_path / "fresh"))
    migrate(fresh)
    assert Lake(fresh).counts() == lake.counts()
    assert Lake(fresh).snapshot() == lake.snapshot()


def test_a_migrated_lake_takes_new_ingests(old_lake: Path, demo_files: list[Path]) -> None:
    migrate(old_lake)
    lake = Lake(old_lake)
    before = lake.counts()["transactions"]
    tx = [f for f in demo_files if f.name.startswith("transactions")]
    r = ingest(tx, "demo", lake)
    assert r.batch_id and len(lake.batches()) == 3
    assert lake.counts()["transactions"] == before + r.totals()["accepted"]
    assert lake.snapshot()["transactions"] == 1
