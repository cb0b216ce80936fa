"""Preprocessing for skewed commercial data, checked against numpy by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from personas.segment.preprocess import (
    GroupWeights,
    choose_features,
    is_skewed,
    signed_log1p,
    soft_clip,
)


def test_signed_log1p_keeps_the_sign_of_net_spend() -> None:
    x = np.array([-99.0, -1.0, 0.0, 1.0, 99.0])
    np.testing.assert_allclose(
        signed_log1p(x), [-np.log(100), -np.log(2), 0, np.log(2), np.log(100)]
    )


def test_soft_clip_is_monotonic_bounded_and_the_identity_near_zero() -> None:
    z = np.linspace(-50, 50, 1001)
    out = soft_clip(z)
    assert np.all(np.diff(out) > 0)
    assert np.abs(out).max() < 3.0
    assert soft_clip(np.array([0.01]))[0] == pytest.approx(0.01, rel=1e-4)


def test_skewness_decides_the_log_transform() -> None:
    rng = np.random.default_rng(0)
    assert is_skewed(pd.Series(rng.lognormal(0, 1.5, 5000)))
    assert not is_skewed(pd.Series(rng.normal(0, 1, 5000)))
    assert not is_skewed(pd.Series([1.0, np.nan]))  # too few values to tell


def test_feature_choice_names_why_a_column_is_left_out() -> None:
    rng = np.random.default_rng(1)
    X = pd.DataFrame(
        {
            "recency_days": rng.exponential(30, 300),
            "frequency": rng.integers(2, 9, 300).astype(float),
            "csat_mean": np.where(rng.random(300) < 0.9, np.nan, 4.0),
            "loyalty_member": np.ones(300),
        }
    )
    choice = choose_features(X, max_missing=0.8)
    assert "recency_days" in choice.numeric and "recency_days" in choice.skewed
    assert "missing" in choice.dropped["csat_mean"]
    assert choice.dropped["loyalty_member"] == "no variance"


def test_group_weights_give_each_group_the_weight_of_one_column() -> None:
    X = pd.DataFrame(np.ones((4, 5)), columns=["a1", "a2", "a3", "a4", "b"])
    gw = GroupWeights({"a1": "a", "a2": "a", "a3": "a", "a4": "a", "b": "b"}).fit(X)
    np.testing.assert_allclose(gw.weights_, [0.5, 0.5, 0.5, 0.5, 1.0])
    # squared contribution of group a equals that of the single column b
    Z = gw.transform(X)
    assert (Z[:, :4] ** 2).sum(axis=1)[0] == pytest.approx((Z[:, 4] ** 2)[0])
