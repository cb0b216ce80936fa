"""Traits and surrogate rules explain a planted difference."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from personas.features.catalog import label
from personas.profile.explain import surrogate_rules, traits
from personas.profile.identity import first_ids
from personas.profile.profiles import build_profiles
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


def _without_rules(profiles: dict) -> dict:
    out = {k: v for k, v in profiles.items() if k != "rules"}
    out["personas"] = [{k: v for k, v in p.items() if k != "rules"} for p in profiles["personas"]]
    return out


def test_rules_fitted_on_a_sample_match_rules_fitted_on_everyone() -> None:
    """A stratified sample of 4,000 of 40,000 customers gives the same rules: same features
    and directions, thresholds within two percentiles (at most 2% of the customers lie between
    the two: about three standard errors of a quantile at n=4,000), fidelity within 0.01,
    per-persona fidelity, coverage and precision within 0.03, all counted on every customer;
    the rest of the profiles is identical."""
    X, y = blobs(n=40_000, k=5, seed=3)
    # spreads unlike the other features' (and wide enough for whole-number formatting)
    X["recency_days"] = X["recency_days"] * 30 + 200
    X["avg_order_value"] = X["avg_order_value"] * 20 + 80
    full = surrogate_rules(X, y, FEATURES, sample=None)
    part = surrogate_rules(X, y, FEATURES, sample=4_000)
    assert abs(full.fidelity - part.fidelity) <= 0.01 and part.fidelity > 0.95
    for k in full.per_persona:
        assert abs(full.persona_fidelity[k] - part.persona_fidelity[k]) <= 0.03
        a, b = full.per_persona[k][0], part.per_persona[k][0]
        ca, cb = _parsed(a), _parsed(b)
        assert [c[:2] for c in ca] == [c[:2] for c in cb], (a, b)
        for (f, _, va), (_, _, vb) in zip(ca, cb, strict=True):
            between = X[f].between(min(va, vb), max(va, vb), inclusive="right")
            assert between.mean() <= 0.02, (a, b)
        assert abs(a["coverage"] - b["coverage"]) <= 0.03
        assert abs(a["precision"] - b["precision"]) <= 0.03
    # counted on everyone: the sampled rule's customers are out of 40,000, not of 4,000
    assert sum(r["customers"] for r in part.per_persona[0]) > 4_000

    ident = first_ids(y)
    conf = np.ones(len(y))
    args = (X, y, conf, FEATURES, ident, 100, {}, "2025-01-01", "f")
    p_full, a_full = build_profiles(*args, rule_sample=None)
    p_part, a_part = build_profiles(*args, rule_sample=4_000)
    assert p_part["rules"]["fitted_on"] == 4_000 and p_full["rules"]["fitted_on"] == 40_000
    assert _without_rules(p_full) == _without_rules(p_part)
    pd.testing.assert_frame_equal(a_full, a_part)


def _parsed(rule: dict) -> list[tuple[str, str, float]]:
    """'Days since last purchase at most 212' -> ('recency_days', 'at most', 212.0), sorted."""
    out = []
    for condition in rule["conditions"]:
        f = next(f for f in FEATURES if condition.startswith(label(f) + " "))
        rest = condition[len(label(f)) + 1 :]
        op = "at most" if rest.startswith("at most") else "over"
        text = rest.removeprefix(op).strip()
        value = float(re.sub(r"[^0-9.\-]", "", text))
        out.append((f, op, value / 100 if text.endswith("%") else value))
    return sorted(out)


def test_group_moments_give_the_same_comparisons_as_the_copies() -> None:
    """Persona-vs-rest means and Cohen's d from one grouped pass equal those of the copies."""
    import numpy as np
    import pandas as pd

    from personas.profile.explain import GroupMoments, cohens_d

    rng = np.random.default_rng(4)
    n = 5000
    num = pd.DataFrame(
        {
            "spend": rng.lognormal(3, 1, n),
            "rate": np.where(rng.random(n) < 0.2, np.nan, rng.random(n)),
            "flag": (rng.random(n) < 0.3).astype(float),
            "const": np.full(n, 2.0),
        }
    )
    labels = rng.integers(0, 4, n)
    labels[:1] = 9  # a persona of one customer: no variance inside, d undefined
    num.loc[labels == 2, "rate"] = np.nan  # a persona without a value in a column
    mom = GroupMoments.of(num, labels)
    for k in np.unique(labels):
        inside = labels == k
        got, want = mom.cohens_d(int(k)), cohens_d(num[inside], num[~inside])
        pd.testing.assert_series_equal(got, want, check_names=False, rtol=1e-9)
        n_rest, mean_rest, _ = mom.rest(int(k))
        pd.testing.assert_series_equal(mean_rest, num[~inside].mean(), rtol=1e-9)
        assert (n_rest == num[~inside].notna().sum()).all()
        pd.testing.assert_series_equal(
            mom.mean.loc[k], num[inside].mean(), check_names=False, rtol=1e-9
        )
