"""Traits and surrogate rules explain a planted difference."""

from __future__ import annotations

from personas.profile.explain import surrogate_rules, traits
from tests.segment.test_segmenter import FEATURES, blobs


def test_traits_and_rules_explain_a_planted_difference() -> None:
    X, y = blobs(n=2000, k=3)
    X.loc[y == 0, "return_rate"] += 50  # group 0 returns far more than any other difference
    tr = traits(X, y, FEATURES)
    top0 = tr[0][0]
    assert top0.feature == "return_rate" and top0.direction == "higher" and top0.effect_size > 1
    rules = surrogate_rules(X, y, FEATURES, max_depth=3)
    assert rules.fidelity > 0.95 and rules.depth <= 3
    assert all(r["conditions"] for r in rules.per_persona[0])
