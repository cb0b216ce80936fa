"""`personas assign`: the lifetime scores travel with the assignment when the features have them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from personas.assign import assign_frame
from tests.publish.fixtures import demo_build


def test_assign_frame_carries_p_alive_and_days_to_next_purchase() -> None:
    demo = demo_build()
    path = next((demo["root"] / "features").rglob("features.parquet"))
    X = pd.read_parquet(path).set_index("customer_id").iloc[:400]
    got = assign_frame(X, demo["run2"])
    for c in ("p_alive", "expected_days_to_next_purchase"):
        np.testing.assert_allclose(got[c], X[c].astype(float), atol=1e-6)
    assert got["expected_days_to_next_purchase"].notna().sum() > 100
