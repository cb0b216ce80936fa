"""Retention: the newest runs stay, and so does everything the publication references."""

from __future__ import annotations

from pathlib import Path

from personas import runs


def _run(root: Path, rid: str, model_run: str | None = None, status: str = "published") -> None:
    d = runs.create_run(root, rid)
    runs.set_status(d, status)
    if model_run:
        runs.write_json(d / runs.DRIFT, {"mode": "assign", "model_run": model_run})


def test_prune_keeps_newest_published_history_and_models(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    _run(root, "r01")  # the model of the published assign run
    _run(root, "r02")  # in the history
    _run(root, "r03")
    _run(root, "r04", status="running")  # never delete a run in progress
    _run(root, "r05")
    _run(root, "r06", model_run="r01")  # published
    _run(root, "r07")
    _run(root, "r08")
    removed = runs.prune_runs(root, keep=2, protect={"r06", "r02"})
    assert sorted(p.name for p in removed) == ["r03", "r05"]
    assert sorted(p.name for p in root.iterdir()) == ["r01", "r02", "r04", "r06", "r07", "r08"]
    assert runs.prune_runs(root, keep=2, protect={"r06", "r02"}) == []  # idempotent
