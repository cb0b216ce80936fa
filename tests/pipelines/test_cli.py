"""The command line as a user meets it: help texts, clear errors, the step-by-step path."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from personas.lake import Lake
from pipelines.cli import main

COMMANDS = [
    "generate",
    "ingest",
    "features",
    "discover",
    "publish",
    "refresh",
    "demo",
    "assign",
    "serve",
    "deploy",
    "status",
    "lake",
]


def test_every_command_explains_itself() -> None:
    runner = CliRunner()
    top = runner.invoke(main, ["--help"])
    assert top.exit_code == 0
    for cmd in COMMANDS:
        assert cmd in top.output
        res = runner.invoke(main, [cmd, "--help"])
        assert res.exit_code == 0, res.output
        assert "Usage:" in res.output and len(res.output.splitlines()) > 4


def test_bad_input_is_one_clear_message_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "orders.csv"
    bad.write_text("customer;order;when\n1;2;2024-01-01\n", encoding="utf-8")
    res = CliRunner().invoke(
        main, ["ingest", str(bad), "--mapping", "online_retail", "--lake", str(tmp_path / "lake")]
    )
    assert res.exit_code == 2
    assert res.output.startswith("error: ") or "error: " in res.output
    assert "orders.csv" in res.output and "Traceback" not in res.output
    assert not Lake(tmp_path / "lake").exists()


def test_missing_mapping_names_the_shipped_ones(tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_text("a\n1\n")
    res = CliRunner().invoke(main, ["ingest", str(f), "--mapping", "nope"])
    assert res.exit_code == 2 and "online_retail" in res.output


def test_serve_without_server_says_how_to_start_one(monkeypatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    res = CliRunner().invoke(main, ["serve", "--cron", "0 3 * * *"])
    assert res.exit_code == 2 and "prefect server start" in res.output


def test_step_by_step_commands_then_assign(demo_raw: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    runner = CliRunner()
    # the folder `personas generate` wrote, as a user would pass it: the generator's own
    # meta.json and truth.parquet beside the exports are not data (the demo mapping ignores them)
    assert {"meta.json", "truth.parquet"} <= {p.name for p in demo_raw.iterdir()}
    r = runner.invoke(main, ["ingest", str(demo_raw), "--mapping", "demo", "-w", str(ws)])
    assert r.exit_code == 0, r.output
    assert "input " in r.output and " = accepted " in r.output
    r = runner.invoke(main, ["features", "-w", str(ws)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["discover", "-w", str(ws), "--k", "6"])
    assert r.exit_code == 0, r.output
    run_dir = next((ws / "runs").iterdir())
    feats = next((ws / "features").glob("as_of=*/features.parquet"))
    out = tmp_path / "scored.csv"
    r = runner.invoke(main, ["assign", str(feats), "--run", str(run_dir), "-o", str(out)])
    assert r.exit_code == 0, r.output
    scored = pd.read_csv(out, dtype={"customer_id": str})
    published = pd.read_parquet(run_dir / "assignments.parquet")
    merged = scored.merge(published, on="customer_id", suffixes=("", "_run"))
    assert len(merged) == len(published)
    # scoring the same customers with the saved model reproduces the run's assignment
    assert (merged["persona_id"] == merged["persona_id_run"]).all()
    profiles = json.loads((run_dir / "profiles.json").read_text())
    assert set(scored.loc[scored.profiled, "persona_id"]) == {p["id"] for p in profiles["personas"]}


@pytest.mark.parametrize("bad", ["0", "x"])
def test_discover_rejects_bad_k(bad: str, tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["discover", "-w", str(tmp_path), "--k", bad])
    assert res.exit_code != 0


def test_refresh_deployment_carries_the_cron_schedule() -> None:
    """What `personas serve --cron` serves: the refresh flow with a cron schedule."""
    from pipelines.flows import refresh

    dep = refresh.to_deployment(
        name="personas-refresh", cron="0 3 * * *", parameters={"config_path": "personas.yaml"}
    )
    assert dep.name == "personas-refresh"
    assert dep.parameters == {"config_path": "personas.yaml"}
    crons = [getattr(s.schedule, "cron", None) for s in dep.schedules]
    assert crons == ["0 3 * * *"]
