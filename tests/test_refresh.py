"""Refresh policy on the demo retailer: refit first, then assign keeping ids, names, actions.

The library path the flow runs (``personas.refresh.refresh_run`` then ``publish``), on the
planted-persona demo lake; drift figures come from the real model and reference sample.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from personas import runs
from personas.config import RefreshConfig, SegmentationConfig
from personas.drift import Drift, Thresholds, psi
from personas.refresh import Policy, decide, refresh_run

SEG = SegmentationConfig(algorithms=("kmeans",), n_bootstrap=0, k_range=(4, 7))


@pytest.fixture(scope="module")
def refreshed(demo_lake: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from personas.features.build import build_features
    from personas.publish.publication import publish

    ws = tmp_path_factory.mktemp("refresh") / "ws"
    fs = build_features(demo_lake, None, ws / "features", clv=False)
    first = refresh_run(fs.path, ws / "runs", ws / "published", Policy(), SEG)
    publish(first.run_dir, ws / "published")
    later = date.fromisoformat(str(fs.as_of)) + timedelta(days=7)
    fs2 = build_features(demo_lake, later, ws / "features", clv=False)
    second = refresh_run(fs2.path, ws / "runs", ws / "published", Policy(), SEG)
    publish(second.run_dir, ws / "published")
    forced = refresh_run(fs2.path, ws / "runs", ws / "published", Policy(mode="refit"), SEG)
    return {"ws": ws, "first": first, "second": second, "forced": forced}


@pytest.mark.slow
def test_first_refresh_refits_then_assigns(refreshed) -> None:
    first, second = refreshed["first"], refreshed["second"]
    assert first.mode == "refit" and first.reason == "refit: no published model"
    assert second.mode == "assign", second.reason
    assert second.reason == "assign: no drift, model 7 days old"
    d = second.drift["drift"]
    assert d["max_psi"] < 0.25 and d["new_customer_share"] == 0.0
    assert second.drift["model_run"] == first.run_dir.name
    info = json.loads((second.run_dir / runs.RUN_INFO).read_text())
    assert info["mode"] == "assign" and info["reason"] == second.reason


@pytest.mark.slow
def test_assign_keeps_ids_names_actions_and_recomputes_figures(refreshed) -> None:
    a, b = runs.load_run(refreshed["first"].run_dir), runs.load_run(refreshed["second"].run_dir)
    pa = {p["id"]: p for p in a.profiles["personas"]}
    pb = {p["id"]: p for p in b.profiles["personas"]}
    assert set(pa) == set(pb)
    # an assign run's table is a refit's table: the same columns in the same order
    assert list(b.assignments.columns) == list(a.assignments.columns)
    for pid in pa:
        assert pb[pid]["name"] == pa[pid]["name"]
        assert pb[pid]["actions"] == pa[pid]["actions"]
    # recency moved by the 7 days of as-of time: profiles are today's, not copied
    ra = a.profiles["population"]["metrics"]["recency_days"]
    rb = b.profiles["population"]["metrics"]["recency_days"]
    assert rb == pytest.approx(ra + 7, abs=0.01)
    # the same model: a customer keeps the persona of the fit unless the 7 days moved them
    m = a.assignments.merge(b.assignments, on="customer_id", suffixes=("_a", "_b"))
    assert len(m) == len(a.assignments)
    assert (m["persona_id_a"] == m["persona_id_b"]).mean() > 0.8
    assert b.migration is not None and not b.migration.empty
    assert (b.path / runs.MODEL).stat().st_ino == (a.path / runs.MODEL).stat().st_ino
    assert b.reference is not None and len(b.reference) == len(a.reference)


@pytest.mark.slow
def test_report_has_a_drift_section(refreshed) -> None:
    html = (refreshed["second"].run_dir / runs.REPORT).read_text(encoding="utf-8")
    assert 'id="drift"' in html and "assign: no drift, model 7 days old" in html
    assert 'id="figdata-drift"' in html


@pytest.mark.slow
def test_asked_refit_keeps_identities(refreshed) -> None:
    forced = refreshed["forced"]
    assert forced.mode == "refit" and "asked (--mode refit)" in forced.reason
    a = runs.load_run(refreshed["second"].run_dir)
    f = runs.load_run(forced.run_dir)
    assert f.identity["previous_run"] == a.run_id
    kept = {m["id"] for m in f.identity["matched"]}
    assert len(kept) >= len(a.profiles["personas"]) - 1
    assert forced.drift["model_run"] == forced.run_dir.name
    assert (forced.run_dir / runs.REFERENCE).exists()


# ---- the pure parts ---------------------------------------------------------------------------
def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    ref = rng.lognormal(size=5000)
    assert psi(ref, rng.lognormal(size=5000)) < 0.02
    assert psi(ref, rng.lognormal(mean=1.0, size=5000)) > 0.25
    binary = (rng.random(5000) < 0.2).astype(float)
    assert psi(binary, (rng.random(5000) < 0.2).astype(float)) < 0.01
    assert psi(binary, (rng.random(5000) < 0.6).astype(float)) > 0.25


def test_decide_names_every_reason() -> None:
    pol = RefreshConfig(refit_every=28).policy()
    calm = Drift(psi={"a": 0.01}, low_confidence_share=0.05, new_customer_share=0.1)
    assert decide(pol, True, 7, calm)[:2] == ("assign", "assign: no drift, model 7 days old")
    assert decide(pol, True, 28, calm)[1] == "refit: model 28 days old >= refit_every 28"
    hot = Drift(psi={"share_spend_fashion": 0.31, "a": 0.01}, added_features=["share_spend_toys"])
    mode, reason, over = decide(pol, True, 7, hot)
    assert mode == "refit"
    assert reason == (
        "refit: feature set changed (new share_spend_toys); PSI of share_spend_fashion 0.31 > 0.25"
    )
    assert over == ["PSI of share_spend_fashion 0.31 > 0.25"]
    assert decide(pol, False, None, None)[1] == "refit: no published model"
    assign = Policy(mode="assign", thresholds=Thresholds())
    assert decide(assign, True, 90, hot)[0] == "assign"  # asked: assign, saying what it saw
    gone = Drift(missing_features=["share_spend_books"])
    assert decide(assign, True, 1, gone)[0] == "refit"  # the model cannot score without it


def test_share_shift_and_new_customers(demo_lake) -> None:
    from personas.drift import measure

    X = pd.DataFrame({"f": np.arange(10.0)}, index=[f"c{i}" for i in range(10)])
    d = measure(
        X,
        X.iloc[:5],
        ["f"],
        np.linspace(0, 1, 10),
        0.25,
        {"P1": 0.7, "P2": 0.3},
        {"P1": 0.5, "P2": 0.5},
        pd.Index(["c0", "c1", "c2", "c3"]),
    )
    assert d.share_shift == {"P1": 0.2, "P2": -0.2}
    assert d.new_customer_share == 0.6
    assert d.low_confidence_share == 0.3  # 0, 0.11, 0.22 of ten are below 0.25


@pytest.mark.slow
def test_status_lists_recent_runs_with_mode_and_reason(refreshed) -> None:
    from click.testing import CliRunner

    from pipelines.cli import main

    res = CliRunner().invoke(main, ["status", "-w", str(refreshed["ws"])])
    assert res.exit_code == 0, res.output
    assert "refit: no published model" in res.output
    assert "assign: no drift, model 7 days old" in res.output
    assert "asked (--mode refit)" in res.output
