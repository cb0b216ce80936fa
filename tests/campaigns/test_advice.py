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
