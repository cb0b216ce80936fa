"""The model steps run on one OpenMP/BLAS thread unless PERSONAS_MODEL_THREADS says more."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from personas.errors import ConfigError
from personas.threads import ENV, model_threads, with_model_threads


def _openmp_threads() -> set[int]:
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"}


def test_model_threads_default_setting_and_bad_values(monkeypatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert model_threads() == 1
    monkeypatch.setenv(ENV, "2")
    assert model_threads() == 2
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(ENV, bad)
        with pytest.raises(ConfigError, match=ENV):
            model_threads()


def test_estimators_fit_inside_the_limit(monkeypatch) -> None:
    """What the boosted trees see while the likely-persona model fits: one thread."""
    import sklearn.ensemble

    from personas.segment.likely import LikelyPersonaClassifier

    if not _openmp_threads():
        pytest.skip("this scikit-learn build has no OpenMP runtime to limit")
    seen: list[set[int]] = []
    fit = sklearn.ensemble.HistGradientBoostingClassifier.fit

    def spy(self, *a, **k):
        seen.append(_openmp_threads())
        return fit(self, *a, **k)

    monkeypatch.setattr(sklearn.ensemble.HistGradientBoostingClassifier, "fit", spy)
    monkeypatch.delenv(ENV, raising=False)
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {"view_share__a": rng.uniform(size=400), "region": rng.choice(["n", "s"], 400)}
    )
    y = np.where(X["view_share__a"] > 0.5, "P1", "P2")
    with threadpool_limits(limits=2, user_api="openmp"):
        LikelyPersonaClassifier(max_iter=5).fit(X, y)
        assert _openmp_threads() == {2}  # restored after the call
    assert seen and all(s == {1} for s in seen)
    monkeypatch.setenv(ENV, "2")
    seen.clear()
    with_model_threads(lambda: seen.append(_openmp_threads()))()
    assert seen == [{2}]
