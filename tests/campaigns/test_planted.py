"""Planted truth: the synthetic retailer's randomised test, measured per planted persona."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from personas.campaigns.uplift import measure
from personas.synthetic.campaign import HOLDOUT, NAME, VARIANT


def test_intervals_cover_the_planted_uplift_and_get_its_sign(
    demo_raw: Path, demo_lake: Path
) -> None:
    meta = json.loads((demo_raw / "meta.json").read_text())
    test = meta["campaign_test"]
    truth = pd.read_parquet(demo_raw / "truth.parquet")
    truth["persona_id"] = truth["persona_name"]
    u = measure(demo_lake, truth, min_size=50)
    assert u is not None
    camps = {c["campaign"]: c for c in u["campaigns"]}
    camp = camps[NAME]
    assert camp["causal"] and camp["variants"] == [VARIANT]
    n = camp["contacted"] + camp["control"]
    assert n == sum(test["participants"].values())
    assert abs(camp["control"] / n - HOLDOUT) < 0.03  # randomised 20 % hold-out
    rows = {r["persona_id"]: r for r in camp["rows"]}
    told = set()
    for name, true in test["true_uplift"].items():
        cell = rows[name]["conversion"]
        assert cell["low"] <= true <= cell["high"], (name, true, cell)
        if rows[name]["verdict"] != "no clear effect":  # large enough to tell
            told.add(name)
            assert (cell["low"] > 0) == (true > 0), (name, true, cell)
    # the strongest responder and the persona the message puts off are told apart
    assert {"bargain_hunter", "unhappy_returner"} <= told
    assert rows["unhappy_returner"]["verdict"] == "lowered"
    assert rows["loyal_high_value"]["verdict"] == "no clear effect"  # planted: no effect
    # outbound contacts without an arm are campaigns without control: never causal
    assert all(not c["causal"] for k, c in camps.items() if k != NAME)
