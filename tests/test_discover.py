"""Persona discovery acceptance on real engines and data (issue 5).

- synthetic retailer at two noise levels: the planted number of personas is chosen and the
  adjusted Rand index against the planted labels is >= 0.9 (clean) and >= 0.75 (noisy);
- surrogate rules of depth <= 4 reproduce the demo assignment with fidelity >= 0.9;
- the same input and seed give byte-identical profiles;
- Online Retail: the chosen model is bootstrap-stable (ARI >= 0.8) and when the last month is
  added, >= 95% of the customers whose features barely changed keep their persona.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from personas.config import SegmentationConfig
from personas.discover import discover
from personas.features.build import build_features, load_features
from personas.ingest.batch import ingest
from personas.runs import load_model
from personas.synthetic.retailer import generate

CFG = SegmentationConfig(map_sample=1000)


def _pipeline(raw: Path, root: Path) -> Path:
    files = sorted(p for p in raw.iterdir() if p.name.endswith((".csv.gz", ".jsonl.gz")))
    ingest(files, "demo", root / "lake")
    return build_features(root / "lake", None, root / "features").path


@pytest.fixture(scope="module")
def clean(demo_lake: Path, demo_raw: Path, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("clean")
    feats = build_features(demo_lake, None, root / "features").path
    a = discover(feats, root / "runs", config=CFG, run_id="a")
    b = discover(feats, root / "runs", config=CFG, run_id="b")
    return {"raw": demo_raw, "features": feats, "a": a, "b": b}


def _ari(run_dir: Path, raw: Path) -> float:
    truth = pd.read_parquet(raw / "truth.parquet")
    got = pd.read_parquet(run_dir / "assignments.parquet")
    both = truth.merge(got, on="customer_id")
    assert len(both) == len(truth)
    return adjusted_rand_score(both["persona"], both["persona_id"])


def _planted_k(raw: Path) -> int:
    return len(json.loads((raw / "meta.json").read_text())["persona_sizes"])


def test_clean_data_planted_k_and_ari(clean) -> None:
    assert clean["a"].k == _planted_k(clean["raw"])
    assert _ari(clean["a"].run_dir, clean["raw"]) >= 0.9


def test_noisy_data_planted_k_and_ari(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    generate(raw, customers=4000, seed=11, noise="noisy")
    feats = _pipeline(raw, tmp_path)
    res = discover(feats, tmp_path / "runs", config=CFG)
    assert res.k == _planted_k(raw)
    assert _ari(res.run_dir, raw) >= 0.75


def test_surrogate_rules_are_short_and_faithful(clean) -> None:
    profiles = json.loads((clean["a"].run_dir / "profiles.json").read_text())
    assert profiles["rules"]["depth"] <= 4 and profiles["rules"]["fidelity"] >= 0.9
    for p in profiles["personas"]:
        assert p["rules"]["items"], p["name"]
        assert all(len(r["conditions"]) <= 4 for r in p["rules"]["items"])


def test_same_input_and_seed_give_byte_identical_profiles(clean) -> None:
    a = (clean["a"].run_dir / "profiles.json").read_bytes()
    b = (clean["b"].run_dir / "profiles.json").read_bytes()
    assert a == b
    pd.testing.assert_frame_equal(
        pd.read_parquet(clean["a"].run_dir / "assignments.parquet"),
        pd.read_parquet(clean["b"].run_dir / "assignments.parquet"),
    )


def test_names_and_actions_are_plain_and_unique(clean) -> None:
    profiles = json.loads((clean["a"].run_dir / "profiles.json").read_text())
    names = [p["name"] for p in profiles["personas"]]
    assert len(set(names)) == len(names)
    from personas.profile.playbook import PLAYBOOK

    playbook = {p.key for p in PLAYBOOK} | {"nurture"}
    for p in profiles["personas"]:
        assert p["description"].count(".") >= 2
        assert p["actions"] and all(a["key"] in playbook and a["because"] for a in p["actions"])
        assert p["size"] >= profiles["min_persona_size"]


@pytest.mark.realdata
def test_online_retail_identities_survive_the_last_month(uci_lake, tmp_path: Path) -> None:
    lake, _ = uci_lake
    fa = build_features(lake, "2011-11-09", tmp_path / "features")
    fb = build_features(lake, "2011-12-10", tmp_path / "features")
    a = discover(fa.path, tmp_path / "runs", config=CFG, run_id="a")
    b = discover(fb.path, tmp_path / "runs", previous_dir=a.run_dir, config=CFG, run_id="b")
    assert a.stability >= 0.8 and b.stability >= 0.8
    ident = json.loads((b.run_dir / "identity.json").read_text())
    assert ident["previous_run"] == "a"
    A = pd.read_parquet(a.run_dir / "assignments.parquet").set_index("customer_id")
    B = pd.read_parquet(b.run_dir / "assignments.parquet").set_index("customer_id")
    both = A.index[A["profiled"] & A.index.isin(B.index)]
    both = both[B.loc[both, "profiled"].to_numpy()]
    # "barely changed": the customer's feature vector moved by less than half a standard
    # deviation in total, measured in the refitted model's own (standardised) space
    model = load_model(b.run_dir / "model.skops")
    za = model.transform(load_features(fa.path).loc[both])
    zb = model.transform(load_features(fb.path).loc[both])
    barely = np.sqrt(((za - zb) ** 2).sum(axis=1)) < 0.5
    assert barely.sum() >= 200
    kept = (A.loc[both, "persona_id"] == B.loc[both, "persona_id"]).to_numpy()
    assert kept[barely].mean() >= 0.95, f"{kept[barely].mean():.3f} of barely-changed kept"
    if a.k == b.k:
        assert not ident["new"] and not ident["vanished"]


def test_likely_personas_and_kpis_in_the_run(clean) -> None:
    """End to end: prospects get a likely persona that agrees with the persona the generator
    hid in them (through the discovered persona each planted one maps to) clearly better than
    the prior, never counted in sizes; the run carries the KPIs."""
    run_dir = clean["a"].run_dir
    metrics = json.loads((run_dir / "metrics.json").read_text())
    got = pd.read_parquet(run_dir / "assignments.parquet")
    profiles = json.loads((run_dir / "profiles.json").read_text())
    for p in profiles["personas"]:
        assert p["size"] == int((got["persona_id"] == p["id"]).sum())
    assert got.loc[got["profiled"], "likely_persona"].isna().all()
    block = metrics["likely_persona"]
    for stage in ("prospect", "one_time"):
        ev = block["stages"][stage]
        assert ev["used"] and ev["accuracy"] > ev["prior_accuracy"] + 0.3, ev
    raw = clean["raw"]
    got = got.drop(columns=["persona_name"])
    truth = pd.read_parquet(raw / "truth.parquet").merge(got, on="customer_id")
    to_found = truth.groupby("persona_name")["persona_id"].agg(lambda s: s.mode().iloc[0])
    hidden = pd.read_parquet(raw / "prospect_truth.parquet").merge(got, on="customer_id")
    # prospects the planted campaign's welcome offer turned into buyers are new customers now
    assert set(hidden["persona_id"]) == {"PROSPECT", "NEW"}
    hidden = hidden[hidden["persona_id"] == "PROSPECT"]
    assert len(hidden) > 50
    want = hidden["persona_name"].map(to_found)
    acc = float((hidden["likely_persona"] == want).mean())  # undecided counts as wrong
    largest = max(profiles["personas"], key=lambda p: p["size"])["id"]
    prior = float((want == largest).mean())
    print(f"prospects: likely persona right {acc:.2f}, prior {prior:.2f}")
    assert acc >= prior + 0.15  # measured 0.46 vs 0.26 (prospects alone, undecided = wrong)
    kpis = metrics["kpis"]
    assert kpis["summary"][0]["group"] == "ALL" and kpis["summary"][0]["customers"] == len(got)
    assert {r["group"] for r in kpis["summary"]} >= {p["id"] for p in profiles["personas"]}
