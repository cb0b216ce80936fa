"""personas.features.clv: the BTYD scores from the lake's summary."""

from __future__ import annotations

import numpy as np

from personas.features.clv import _distinct_triplets


def test_distinct_triplets_pack_whole_days_and_fall_back_otherwise() -> None:
    """CLV is scored once per distinct (f, r, T); every customer must get its own row back."""
    rng = np.random.default_rng(0)
    f = rng.integers(0, 5, 2000).astype(float)
    r, T = rng.integers(0, 50, 2000) / 7.0, rng.integers(50, 60, 2000) / 7.0
    for ff in (f, f + 0.5):  # whole days pack into one integer; anything else falls back
        fu, ru, Tu, inv = _distinct_triplets(ff, r, T, scale=7.0)
        assert np.array_equal(fu[inv], ff) and np.allclose(ru[inv], r) and np.allclose(Tu[inv], T)
        assert len(fu) == len(np.unique(np.column_stack([ff, r, T]), axis=0))
