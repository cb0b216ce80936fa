"""The run folder's owner: reading a run back, its status, a folder that is not a run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from personas import runs
from personas.errors import RunError


def test_a_folder_without_profiles_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(RunError, match=r"not a run folder \(profiles.json is missing\)"):
        runs.load_run(tmp_path)
    with pytest.raises(RunError, match="no runs under"):
        runs.newest_run(tmp_path / "runs")
    with pytest.raises(RunError, match="nothing published"):
        runs.latest_run(tmp_path)


def test_status_updates_add_and_remove_fields(tmp_path: Path) -> None:
    run_dir = runs.create_run(tmp_path, "20250101T000000Z", as_of="2025-01-01")
    info = json.loads((run_dir / runs.RUN_INFO).read_text())
    assert info["status"] == "running" and info["as_of"] == "2025-01-01"
    runs.set_status(run_dir, "failed", error="boom")
    runs.set_status(run_dir, "discovered", error=None)
    info = json.loads((run_dir / runs.RUN_INFO).read_text())
    assert info["status"] == "discovered" and "error" not in info and "updated_at" in info
    assert not list(run_dir.glob(".*tmp*"))  # written through a temporary name
    with pytest.raises(FileExistsError):
        runs.create_run(tmp_path, "20250101T000000Z")


def test_a_run_reads_back_with_its_tables_on_demand(tmp_path: Path) -> None:
    import pandas as pd

    run_dir = tmp_path / "r1"
    run_dir.mkdir()
    (run_dir / runs.PROFILES).write_text(
        json.dumps(
            {"personas": [{"id": "P1", "name": "A", "size": 3, "share": 1.0, "description": "d"}]}
        )
    )
    pd.DataFrame({"customer_id": ["a", "b", "c"], "persona_id": ["P1"] * 3}).to_parquet(
        run_dir / runs.ASSIGNMENTS
    )
    run = runs.load_run(run_dir)
    assert run.run_id == "r1" and run.status == "discovered"
    assert run.map is None and run.migration is None
    assert len(run.assignments) == 3
    assert run.personas.loc["P1", "name"] == "A"
    (tmp_path / "published").mkdir()
    (tmp_path / "published" / runs.LATEST).symlink_to(run_dir)
    assert runs.latest_run(tmp_path).path == run_dir.resolve()


def test_runs_started_in_the_same_second_get_distinct_ids(tmp_path: Path) -> None:
    """Two `personas discover` in one second used to fail with FileExistsError."""
    import concurrent.futures as cf

    with cf.ThreadPoolExecutor(4) as pool:
        dirs = list(pool.map(lambda _: runs.create_run(tmp_path / "runs"), range(8)))
    assert len({d.name for d in dirs}) == 8
    names = sorted(d.name for d in dirs)
    assert all(
        json.loads((tmp_path / "runs" / n / runs.RUN_INFO).read_text())["run_id"] == n
        for n in names
    )
