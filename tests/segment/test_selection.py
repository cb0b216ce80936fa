"""Model selection: distances, candidates and the rule that picks one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs

from personas.segment.selection import choose, fit_candidate, sqdist


def test_sqdist_equals_the_direct_computation() -> None:
    rng = np.random.default_rng(0)
    Z, C = rng.normal(size=(50, 4)), rng.normal(size=(3, 4))
    direct = ((Z[:, None, :] - C[None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(sqdist(Z, C), direct, atol=1e-10)
    assert (sqdist(C, C).diagonal() >= 0).all()


@pytest.mark.parametrize("algorithm", ["kmeans", "gmm", "ward"])
def test_each_algorithm_finds_well_separated_groups(algorithm: str) -> None:
    Z, y = make_blobs(600, n_features=3, centers=3, cluster_std=0.3, random_state=2)
    fitted = fit_candidate(algorithm, 3, Z, seed=0)
    labels = fitted.predict(Z)
    # each planted group maps to exactly one cluster
    assert pd.crosstab(y, labels).gt(0).sum(axis=1).eq(1).all()
    conf = fitted.confidence(Z)
    assert ((conf >= 0) & (conf <= 1)).all() and np.median(conf) > 0.5


def test_the_rule_prefers_fewer_personas_within_the_tolerance() -> None:
    table = pd.DataFrame(
        {
            "algorithm": ["kmeans"] * 3,
            "k": [3, 4, 5],
            "silhouette": [0.50, 0.505, 0.40],
            "stability": [0.95, 0.97, 0.99],
            "min_size_share": [0.2, 0.15, 0.1],
        }
    )
    best = choose(table, min_stability=0.8, tolerance=0.02, min_size_share=0.05)
    assert int(best["k"]) == 3  # 0.50 is within 2% of 0.505: fewer personas win
    unstable = table.assign(stability=[0.5, 0.97, 0.99])
    assert int(choose(unstable, 0.8, 0.02, 0.05)["k"]) == 4  # k=3 is not stable enough
