"""A process killed mid-ingest (a real SIGKILL) leaves the lake readable and consistent.

The child ingest stops at a named point (``personas.lake.pause_point``, enabled only through
``PERSONAS_TEST_PAUSE``), announces itself in a marker file, and is killed there. The rerun
must then complete the batch exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable

from personas.ingest.batch import ingest
from personas.lake import STAGING_DIR, Lake
from tests.conftest import REPO, shared_data

pytestmark = pytest.mark.realdata


def _state(lake: Path) -> tuple[int, int, int]:
    con = Lake(lake).connect()
    return (
        len(Lake(lake).batches()),
        con.execute("SELECT count(*) FROM transactions").fetchone()[0],
        con.execute("SELECT count(*) FROM quarantine").fetchone()[0],
    )


def _orphans(lake: Path) -> list[Path]:
    listed = {p.resolve() for t in ("transactions", "quarantine") for p in Lake(lake).files(t)}
    return [
        p
        for t in ("transactions", "quarantine")
        for p in (lake / t).rglob("*.parquet")
        if p.resolve() not in listed
    ]


@pytest.mark.parametrize("point", ["staged", "commit:moved-one", "commit:one-table"])
def test_killed_ingest_leaves_lake_consistent_and_rerun_completes(
    tmp_path: Path, point: str
) -> None:
    days = sorted(shared_data("uci-online-retail", "by-day").glob("2011-0[12]-*.csv.gz"))
    first, second = days[:10], days[10:]
    lake = tmp_path / "lake"
    ingest(first, "online_retail", lake)
    before = _state(lake)

    marker = tmp_path / "paused"
    env = {
        **os.environ,
        "PERSONAS_TEST_PAUSE": point,
        "PERSONAS_TEST_PAUSE_FILE": str(marker),
        "PERSONAS_TEST_PAUSE_SECONDS": "120",
    }
    code = (
        "import sys; from personas.ingest.batch import ingest; "
        "ingest(sys.argv[2:], 'online_retail', sys.argv[1])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(lake), *map(str, second)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"the ingest ended before {point}: {proc.stderr.read().decode()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the ingest never reached {point}")
            time.sleep(0.05)
        assert int(marker.read_text()) == proc.pid
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    # killed: readable, nothing of the killed batch visible
    assert _state(lake) == before
    assert (lake / STAGING_DIR).exists() and any((lake / STAGING_DIR).iterdir())
    if point.startswith("commit:"):
        assert _orphans(lake), "files had moved into partitions before the kill"
    if point == "commit:one-table":  # a Delta commit of the batch landed, yet is not seen
        assert len(DeltaTable(str(lake / "quarantine")).history()) == 2

    # the rerun recovers (deletes the leftovers) and completes the batch exactly once
    r = ingest(second, "online_retail", lake)
    assert r.batch_id and len(r.sources) == len(second) and not r.skipped
    fresh = tmp_path / "fresh"
    ingest(first, "online_retail", fresh)
    ingest(second, "online_retail", fresh)
    assert _state(lake) == _state(fresh)
    assert _state(lake)[0] == 2
    assert _orphans(lake) == []
    assert not any((lake / STAGING_DIR).iterdir())
    again = ingest(second, "online_retail", lake)
    assert again.batch_id is None and _state(lake) == _state(fresh)


def test_a_second_writer_is_refused_while_one_runs(tmp_path: Path) -> None:
    from personas.errors import LakeError

    day = sorted(shared_data("uci-online-retail", "by-day").glob("*.csv.gz"))[0]
    lake = Lake(tmp_path / "lake")
    with lake.lock(), pytest.raises(LakeError, match="is being written by another process"):
        ingest([day], "online_retail", lake)
    assert ingest([day], "online_retail", lake).batch_id
