"""Weekly exports with a planted change, and a simulated stretch of scheduled refreshes on them.

The simulation is the issue's acceptance in small: unchanged weeks assign, the planted change
(a persona grows among new customers, a new category appears) triggers exactly one refit whose
reason names the new feature, persona ids survive the refit, and the webhook hears of it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from personas.config import RefreshConfig, SegmentationConfig
from personas.synthetic.weekly import generate_weekly
from tests.test_alerts import Hook


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*.csv.gz")):
        h.update(p.read_bytes())
    return h.hexdigest()


def test_weekly_exports_are_deterministic_and_plant_the_change(tmp_path: Path) -> None:
    kw = {"weeks": 6, "change_week": 4, "base_customers": 200, "new_per_week": 40}
    kw["history_weeks"] = 4
    a = generate_weekly(tmp_path / "a", seed=5, **kw)
    generate_weekly(tmp_path / "b", seed=5, **kw)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert len(a.weeks) == 6 and a.weeks[0] == "week=2025-01-06"
    tx = {w: pd.read_csv(tmp_path / "a" / w / "transactions.csv.gz") for w in a.weeks}
    assert all("garden" not in set(t["category"]) for t in list(tx.values())[:3])
    assert all("garden" in set(t["category"]) for t in list(tx.values())[3:])
    truth = pd.read_parquet(tmp_path / "a" / "truth.parquet")
    new = truth[truth["first_week"] >= 1]
    before = (new[new["first_week"] < 4]["persona"] == "tech_buyers").mean()
    after = (new[new["first_week"] >= 4]["persona"] == "tech_buyers").mean()
    assert after > before + 0.05
    # every customer of a week's orders is in that week's or an earlier customers file
    seen: set[str] = set()
    for w in a.weeks:
        seen |= set(pd.read_csv(tmp_path / "a" / w / "customers.csv.gz")["customer_id"])
        assert set(tx[w]["customer_id"]) <= seen


@pytest.mark.slow
def test_simulated_weeks_assign_until_the_change_then_refit_once(tmp_path: Path) -> None:
    from personas.synthetic.simulate import markdown_table, weekly_refreshes

    raw = tmp_path / "raw"
    generate_weekly(raw, weeks=10, change_week=7, base_customers=600, new_per_week=25, seed=2)
    hook = Hook()
    try:
        rows = weekly_refreshes(
            raw,
            tmp_path / "ws",
            RefreshConfig(refit_every=365).policy(),
            SegmentationConfig(algorithms=("kmeans",), n_bootstrap=0, k_range=(3, 6)),
            webhook_url=hook.url,
        )
    finally:
        hook.close()
    print(markdown_table(rows))
    modes = [r["mode"] for r in rows]
    assert modes == ["refit"] + ["assign"] * 5 + ["refit"] + ["assign"] * 3, modes
    change = rows[6]
    assert "new cat_share__garden" in change["reason"]
    assert change["alert"] == "refit"
    assert [b["personas"]["event"] for b in hook.bodies] == ["refit", "refit"]
    assert "cat_share__garden" in hook.bodies[1]["text"]
    for r in rows[1:6] + rows[7:]:
        assert r["reason"].startswith("assign: no drift, model ")
    # the personas before the change keep their ids through the refit
    assert set(rows[5]["personas"]) <= set(rows[6]["personas"])
