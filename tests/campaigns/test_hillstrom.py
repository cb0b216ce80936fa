"""Hillstrom's randomised e-mail test: our uplift equals an independent count of the CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from personas.campaigns.exposure import contacts
from personas.campaigns.uplift import measure, uplift_table
from personas.lake import Lake
from tests.conftest import shared_data


@pytest.fixture(scope="module")
def hillstrom(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    from personas.ingest.batch import ingest

    f = shared_data("hillstrom-email", "hillstrom.csv.gz")
    lake = tmp_path_factory.mktemp("hillstrom") / "lake"
    ingest([f], "hillstrom", lake)
    return lake, pd.read_csv(f)


def test_every_customer_carries_an_arm_including_the_control(hillstrom) -> None:
    lake, raw = hillstrom
    con = Lake(lake).connect()
    df = contacts(con)
    assert len(df) == len(raw) == 64_000
    assert df["customer_id"].is_unique
    want = raw["segment"].map({"No E-Mail": "control"}).fillna("treatment")
    got = df.set_index("customer_id").loc[[f"H{i:05d}" for i in range(1, 64_001)], "arm"]
    assert (got.to_numpy() == want.to_numpy()).all()


def test_overall_rates_and_uplift_equal_an_independent_recount(hillstrom) -> None:
    """Plain pandas on the CSV, no code of ours: counts, rates, Newcombe limits recomputed."""
    lake, raw = hillstrom
    rates = raw.groupby("segment")[["visit", "conversion", "spend"]].mean()
    # the published figures of the test (SOURCE.md; Hillstrom 2008)
    assert round(100 * rates.loc["Mens E-Mail", "visit"], 2) == 18.28
    assert round(100 * rates.loc["Womens E-Mail", "visit"], 2) == 15.14
    assert round(100 * rates.loc["No E-Mail", "visit"], 2) == 10.62
    u = measure(lake, None, min_size=50, response="visit")
    assert u is not None and len(u["campaigns"]) == 1
    camp = u["campaigns"][0]
    assert camp["causal"] and camp["control"] == int((raw["segment"] == "No E-Mail").sum())
    assert camp["variants"] == ["Mens E-Mail", "Womens E-Mail"]
    rows = {r["variant"]: r for r in camp["rows"] if r["persona_id"] == "overall"}
    ctrl = raw[raw["segment"] == "No E-Mail"]
    z = 1.959963984540054
    for v in ("Mens E-Mail", "Womens E-Mail"):
        r, t = rows[v], raw[raw["segment"] == v]
        assert (r["n_treatment"], r["n_control"]) == (len(t), len(ctrl))
        for o in ("visit", "conversion"):
            assert r[o]["rate_treatment"] == pytest.approx(t[o].mean(), abs=1e-12)
            assert r[o]["rate_control"] == pytest.approx(ctrl[o].mean(), abs=1e-12)
            # Newcombe's limits from Wilson's closed form, written out again here
            lims = []
            for x, n in ((t[o].sum(), len(t)), (ctrl[o].sum(), len(ctrl))):
                p = x / n
                c = (p + z**2 / (2 * n)) / (1 + z**2 / n)
                h = z * ((p * (1 - p) / n + z**2 / (4 * n**2)) ** 0.5) / (1 + z**2 / n)
                lims.append((p, c - h, c + h))
            (p1, l1, u1), (p0, l0, u0) = lims
            lo = p1 - p0 - ((p1 - l1) ** 2 + (u0 - p0) ** 2) ** 0.5
            hi = p1 - p0 + ((u1 - p1) ** 2 + (p0 - l0) ** 2) ** 0.5
            assert (r[o]["low"], r[o]["high"]) == pytest.approx((lo, hi), abs=1e-12)
        assert r["spend"]["uplift"] == pytest.approx(t["spend"].mean() - ctrl["spend"].mean())
        assert r["spend"]["low"] < r["spend"]["uplift"] < r["spend"]["high"]
        assert r["incremental_conversions_per_1000"] == pytest.approx(
            1000 * (t["conversion"].mean() - ctrl["conversion"].mean())
        )
        assert r["verdict"] == "raised"
    assert round(100 * rows["Mens E-Mail"]["visit"]["uplift"], 2) == 7.66  # SOURCE.md
    assert round(100 * rows["Womens E-Mail"]["visit"]["uplift"], 2) == 4.52


def test_without_a_control_arm_rates_only_and_not_causal(hillstrom) -> None:
    lake, _ = hillstrom
    df = contacts(Lake(lake).connect())
    treated = df[df["arm"] == "treatment"]
    u = uplift_table(treated, None, min_size=50)
    camp = u["campaigns"][0]
    assert not camp["causal"] and camp["control"] == 0
    for r in camp["rows"]:
        assert r["verdict"] == "not causal"
        assert "uplift" not in r["visit"] and "rate_control" not in r["visit"]


def test_personas_from_customer_level_attributes_get_uplift_per_variant(
    hillstrom, tmp_path: Path
) -> None:
    """No order lines: features from the mapped attributes, personas, then uplift per persona."""
    from personas.features.build import build_features, load_catalog, load_features
    from personas.segment.segmenter import PersonaSegmenter

    lake, raw = hillstrom
    fs = build_features(lake, None, tmp_path / "features")
    # dated at the campaign, so no campaign outcome (visits, orders) feeds the personas
    assert fs.as_of.isoformat() == "2008-03-01"
    X = load_features(fs.path)
    assert len(X) == 64_000
    assert {"recency_days", "monetary", "cat_share__mens", "chan_share__web"} <= set(X.columns)
    assert not any(c.startswith(("sessions", "email_", "campaign_")) for c in X.columns)
    x = X.loc[[f"H{i:05d}" for i in range(1, 64_001)]]
    assert (x["monetary"].to_numpy() == raw["history"].to_numpy()).all()
    assert (x["recency_days"].to_numpy() == raw["recency"].to_numpy() * 30.4375).all()
    assert "customer-level attributes" in load_catalog(fs.path)["basis"]

    seg = PersonaSegmenter(
        k_range=(3, 6), algorithms=("kmeans",), sample_size=3000, n_bootstrap=1
    ).fit(X)
    assert seg.k_ >= 3
    assign = pd.DataFrame(
        {
            "customer_id": X.index,
            "persona_id": [f"P{k + 1}" for k in seg.labels_],
            "persona_name": [f"persona {k + 1}" for k in seg.labels_],
        }
    )
    u = measure(lake, assign, min_size=seg.min_persona_size_, response="visit")
    camp = u["campaigns"][0]
    personas = sorted(assign["persona_id"].unique())
    for v in camp["variants"]:
        rows = {r["persona_id"]: r for r in camp["rows"] if r["variant"] == v}
        assert set(rows) == {"overall", *personas}
        # per persona, rates equal a recount of the CSV rows of that persona's customers
        for pid in personas:
            sub = raw[(assign["persona_id"] == pid).to_numpy()]
            t, k = sub[sub["segment"] == v], sub[sub["segment"] == "No E-Mail"]
            r = rows[pid]
            assert (r["n_treatment"], r["n_control"]) == (len(t), len(k))
            assert r["visit"]["rate_treatment"] == pytest.approx(t["visit"].mean())
            assert r["visit"]["rate_control"] == pytest.approx(k["visit"].mean())
            assert r["visit"]["low"] < r["visit"]["uplift"] < r["visit"]["high"]
        assert sum(rows[p]["n_treatment"] for p in personas) == rows["overall"]["n_treatment"]
    # the tested advice in profiles.json follows the intervals: the men's e-mail raised visits
    # in every persona (measured +6.4 to +9.5 pp), so each gets it recommended, never a warning
    from personas.campaigns.advice import apply_to_profiles
    from personas.publish.plots.uplift import forests

    prof = apply_to_profiles({"personas": [{"id": p, "actions": []} for p in personas]}, u)
    for q in prof["personas"]:
        rows = [r for r in camp["rows"] if r["persona_id"] == q["id"]]
        raised = {r["variant"] for r in rows if r["visit"]["low"] > 0}
        assert "Mens E-Mail" in raised
        assert {t["variant"] for t in q["tested_messages"]} == raised
        assert all(t["kind"] == "recommend" for t in q["tested_messages"])
    # the forest plot: one trace per e-mail, one dot per persona and the overall row
    (fig,) = forests(u).values()
    assert {t.name.split(",")[0] for t in fig.data} == set(camp["variants"])
    assert sum(len(t.x) for t in fig.data) == len(camp["rows"])
