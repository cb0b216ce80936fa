"""Tested-message advice: recommend only what raised the response, warn on what lowered it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from personas.campaigns import advice
from personas.campaigns.uplift import uplift_table


def _contacts(rates: dict[str, tuple[float, float]], n: int = 4000) -> pd.DataFrame:
    """Contacts per persona with the given (treatment, control) conversion rates."""
    rng = np.random.default_rng(0)
    parts = []
    for pid, (rt, rc) in rates.items():
        arm = np.where(np.arange(n) % 5 == 0, "control", "treatment")
        p = np.where(arm == "control", rc, rt)
        conv = (rng.random(n) < p).astype(int)
        parts.append(
            pd.DataFrame(
                {
                    "customer_id": [f"{pid}-{i}" for i in range(n)],
                    "campaign": "spring",
                    "variant": np.where(arm == "control", None, "offer"),
                    "arm": arm,
                    "ts": pd.Timestamp("2024-03-01", tz="UTC"),
                    "visit": conv,
                    "conversion": conv,
                    "spend": conv * 40.0,
                    "persona": pid,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def test_recommend_warn_or_stay_silent_by_the_interval() -> None:
    df = _contacts({"UP": (0.30, 0.10), "DOWN": (0.05, 0.20), "FLAT": (0.10, 0.10)})
    assign = df[["customer_id"]].assign(persona_id=df["persona"], persona_name=df["persona"])
    u = uplift_table(df.drop(columns="persona"), assign, min_size=50)
    verdicts = {r["persona_id"]: r["verdict"] for r in u["campaigns"][0]["rows"]}
    assert verdicts["UP"] == "raised" and verdicts["DOWN"] == "lowered"
    assert verdicts["FLAT"] == "no clear effect"
    (up,) = advice.tested_actions(u, "UP")
    assert up["kind"] == "recommend" and "'offer'" in up["action"]
    assert "excludes zero" in up["why"] and "held out" in up["why"]
    (down,) = advice.tested_actions(u, "DOWN")
    assert down["kind"] == "warn" and "lowered" in down["action"]
    assert advice.tested_actions(u, "FLAT") == []
    assert "no clear effect" in advice.persona_lines(u, "FLAT")[0]
    # without a control arm nothing is advised, and the line says it is not causal
    treated = df[df["arm"] == "treatment"].drop(columns="persona")
    u2 = uplift_table(treated, assign, min_size=50)
    assert advice.tested_actions(u2, "UP") == []
    assert "not causal" in advice.persona_lines(u2, "UP")[0]


def test_likely_rows_are_labelled_apart_and_never_advice() -> None:
    """Prospects placed by likely persona: own rows, pooled undecided, no playbook entry."""
    df = _contacts({"UP": (0.30, 0.10), "NEWUP": (0.40, 0.05), "NEWFLAT": (0.10, 0.10)})
    members = df["persona"] == "UP"
    likely = df["persona"].map({"NEWUP": "UP", "NEWFLAT": "undecided"})
    assign = pd.DataFrame(
        {
            "customer_id": df["customer_id"],
            "persona_id": df["persona"].where(members, "PROSPECT"),
            "persona_name": df["persona"].where(members, "Prospects"),
            "likely_persona": likely.where(~members, None),
            "likely_persona_name": likely.map({"UP": "Up", "undecided": "Undecided"}),
        }
    )
    u = uplift_table(df.drop(columns="persona"), assign, min_size=50, n_boot=200)
    camp = u["campaigns"][0]
    rows = {(r["persona_id"], r["likely"]): r for r in camp["rows"]}
    assert set(rows) == {
        ("overall", False),
        ("UP", False),
        ("PROSPECT", False),
        ("UP", True),
        ("undecided", True),
    }
    assert rows[("UP", True)]["persona_name"] == "Likely: Up"
    assert rows[("undecided", True)]["persona_name"] == "Likely: Undecided"
    assert rows[("UP", True)]["n_treatment"] + rows[("UP", True)]["n_control"] == 4000
    assert camp["likely_contacted"] + camp["likely_control"] == 8000
    assert rows[("UP", True)]["verdict"] == "raised"
    # the members' advice ignores the likely row; the card lists it apart, labelled a guess
    (only,) = advice.tested_actions(u, "UP")
    assert f"{rows[('UP', False)]['n_treatment']:,} contacted" in only["why"]
    (line,) = advice.likely_lines(u, "UP")
    assert "not members" in line
    # too small a likely group is not published (the minimum size applies to every row)
    small = uplift_table(df.drop(columns="persona"), assign, min_size=5000, n_boot=200)
    assert not [r for r in small["campaigns"][0]["rows"] if r["likely"]]


def test_advice_goes_into_profiles_once_and_validates() -> None:
    df = _contacts({"P1": (0.30, 0.10), "P2": (0.05, 0.20), "P3": (0.10, 0.10)})
    assign = df[["customer_id"]].assign(persona_id=df["persona"], persona_name=df["persona"])
    u = uplift_table(df.drop(columns="persona"), assign, min_size=50, n_boot=200)
    plain = {"key": "win_back", "title": "Win back", "what": "x", "because": "y"}
    profiles = {"personas": [{"id": p, "actions": [plain]} for p in ("P1", "P2", "P3")]}
    once = advice.apply_to_profiles(profiles, u)
    assert once == advice.apply_to_profiles(once, u)  # idempotent
    assert profiles["personas"][0]["actions"] == [plain]  # the input is not changed
    by = {q["id"]: q for q in once["personas"]}
    assert [a["key"] for a in by["P1"]["actions"]] == ["tested_message", "win_back"]
    assert [a["key"] for a in by["P2"]["actions"]] == ["message_warning", "win_back"]
    assert by["P3"]["actions"] == [plain] and by["P3"]["tested_messages"] == []
    (t,) = by["P1"]["tested_messages"]
    assert t["kind"] == "recommend" and t["low"] > 0 and t["n_control"] == 800
    (w,) = by["P2"]["tested_messages"]
    assert w["kind"] == "warn" and w["high"] < 0
    cleared = advice.apply_to_profiles(once, None)
    assert all(q["actions"] == [plain] and q["tested_messages"] == [] for q in cleared["personas"])
