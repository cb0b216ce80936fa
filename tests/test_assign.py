"""`personas assign`: the lifetime scores travel with the assignment when the features have them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from personas.assign import assign_file, assign_frame
from tests.publish.fixtures import demo_build


def test_assign_frame_carries_p_alive_and_days_to_next_purchase() -> None:
    demo = demo_build()
    path = next((demo["root"] / "features").rglob("features.parquet"))
    X = pd.read_parquet(path).set_index("customer_id").iloc[:400]
    if "p_alive" not in X.columns:
        # the demo's lifetime model can be unusable (then the features have neither column):
        # give the table values of its own, which the assignment must carry customer by customer
        rng = np.random.default_rng(0)
        X = X.assign(
            p_alive=rng.uniform(0, 1, len(X)),
            expected_days_to_next_purchase=np.where(
                rng.uniform(size=len(X)) < 0.3, np.nan, rng.uniform(5, 400, len(X))
            ),
        )
    got = assign_frame(X, demo["run2"])
    for c in ("p_alive", "expected_days_to_next_purchase"):
        np.testing.assert_allclose(got[c], X[c].astype(float), atol=1e-6)
    assert got["expected_days_to_next_purchase"].notna().sum() > 100


def test_assign_file_counts_each_customer_once(tmp_path) -> None:
    """Likely personas place customers a second time; the headline total counts customers."""
    demo = demo_build()
    src = next((demo["root"] / "features").rglob("features.parquet"))
    X = pd.read_parquet(src).iloc[:400]
    path = tmp_path / "features.parquet"
    X.to_parquet(path, index=False)
    res = assign_file(path, demo["run2"])
    assert any(k.startswith("likely ") for k in res.counts)  # the demo run has the model
    assert res.summary().splitlines()[0].startswith("assigned 400 customers")
    assert len(pd.read_parquet(res.out)) == 400
