"""Transaction logs for the BTYD tests: hand-made, simulated, and CDNOW's calibration summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from personas.features.btyd import rfm_summary
from tests.features.btyd.data import CDNOW_CAL_END, CDNOW_OBS_END, load_cdnow, transactions


@pytest.fixture
def small_log() -> pd.DataFrame:
    return transactions(
        [
            ("007", "2024-01-01 09:00", 10.0),
            ("007", "2024-01-01 18:30", 5.0),  # same day: one purchase of 15
            ("007", "2024-01-15 12:00", 20.0),
            ("007", "2024-01-29 08:00", 40.0),
            ("7", "2024-01-08 10:00", 7.0),  # "7" is not "007"
            ("x", "2024-02-05 10:00", 3.0),
        ]
    )


@pytest.fixture(scope="module")
def synthetic_log() -> pd.DataFrame:
    """A transaction log simulated purchase by purchase from the BG/NBD story."""
    rng = np.random.default_rng(7)
    rows = []
    start = pd.Timestamp("2023-01-01", tz="UTC")
    for i in range(600):
        lam, p = rng.gamma(0.8, 1 / 10.0), rng.beta(1.0, 4.0)  # rate per day
        t, alive = rng.uniform(0, 180), True
        rows.append((f"c{i:04d}", t, rng.gamma(4.0, 10.0)))
        while alive:
            t += rng.exponential(1 / lam)
            if t > 540:
                break
            rows.append((f"c{i:04d}", t, rng.gamma(4.0, 10.0)))
            alive = rng.random() > p
    ids, days, amount = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "customer_id": ids,
            "ts": start + pd.to_timedelta(np.asarray(days), unit="D"),
            "amount": amount,
        }
    )


@pytest.fixture(scope="module")
def cdnow_rfm() -> pd.DataFrame:
    return rfm_summary(load_cdnow(), CDNOW_CAL_END, CDNOW_OBS_END, time_unit="W")
