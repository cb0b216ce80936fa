"""Features read one snapshot of the lake (Delta table versions) and can read it again later."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from personas.features.build import build_features, load_catalog, load_features
from personas.ingest.batch import ingest
from personas.lake import Lake
from pipelines.cli import main
from tests.conftest import REPO


def test_features_record_the_versions_and_time_travel(demo_files: list[Path], tmp_path: Path):
    first = [f for f in demo_files if f.name.startswith(("customers", "transactions"))]
    lake = Lake(tmp_path / "lake")
    ingest(first, "demo", lake)
    fs1 = build_features(lake, "2025-01-01", tmp_path / "f1", clv=False)
    cat1 = load_catalog(fs1.path)
    assert cat1["lake_versions"] == lake.snapshot() and "events" not in cat1["lake_versions"]
    ingest([f for f in demo_files if f not in first], "demo", lake)
    now = build_features(lake, "2025-01-01", tmp_path / "f2", clv=False)
    assert set(now.columns) > set(fs1.columns)  # events and feedback features now
    again = build_features(
        lake, "2025-01-01", tmp_path / "f3", clv=False, versions=cat1["lake_versions"]
    )
    # the same rows and values (a parallel sum may differ in its last bit from run to run)
    pd.testing.assert_frame_equal(load_features(again.path), load_features(fs1.path), rtol=1e-12)
    assert load_catalog(again.path)["lake_fingerprint"] == cat1["lake_fingerprint"]
    assert load_catalog(now.path)["lake_fingerprint"] != cat1["lake_fingerprint"]


def test_cli_migrates_and_shows_versions(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(REPO / "tests" / "data" / "lake_v0", ws / "lake")
    runner = CliRunner()
    res = runner.invoke(main, ["lake", "migrate", "-w", str(ws)])
    assert res.exit_code == 0, res.output
    assert "migrated 2 batch(es)" in res.output and "transactions 0" in res.output
    res = runner.invoke(main, ["status", "-w", str(ws)])
    assert res.exit_code == 0, res.output
    assert "transactions" in res.output and "(Delta version 0)" in res.output
    res = runner.invoke(main, ["lake", "migrate", "-w", str(ws)])
    assert res.exit_code == 2 and "nothing to migrate" in res.output
    res = runner.invoke(
        main, ["features", "-w", str(ws), "--lake-versions", "transactions=0,customers=0"]
    )
    assert res.exit_code == 0, res.output
    (cat,) = (ws / "features").glob("as_of=*/catalog.json")
    assert json.loads(cat.read_text())["lake_versions"] == {"transactions": 0, "customers": 0}
