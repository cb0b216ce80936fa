"""Membership of customer ids, as text, whatever type the ids arrive in."""

from __future__ import annotations

import numpy as np
import pandas as pd

from personas.ids import among


def test_among_compares_ids_as_text() -> None:
    ids = pd.Index([10, 11, 12, 13])  # integer ids against text ones
    assert among(ids, pd.Series(["11", "13", "99"])).tolist() == [False, True, False, True]
    text = pd.Series(["a", None, "c"], dtype="str")
    got = among(text, ["c", "a"])
    assert got.dtype == bool and got.tolist() == [True, False, True]
    assert not among(pd.Series(["x"]), []).any()


def test_among_agrees_with_a_set_on_a_million_ids() -> None:
    rng = np.random.default_rng(0)
    ids = pd.Index(rng.integers(0, 2_000_000, 1_000_000).astype(str))
    values = pd.Series(rng.integers(0, 2_000_000, 500_000).astype(str))
    chosen = set(values)
    want = np.array([i in chosen for i in ids])
    np.testing.assert_array_equal(among(ids, values), want)
