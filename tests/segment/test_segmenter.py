"""PersonaSegmenter, identity matching and explanations on data with a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from personas.discover import load_model, save_model
from personas.profile.explain import surrogate_rules, traits
from personas.profile.identity import first_ids, match, migration_matrix
from personas.profile.naming import PersonaStats, make_names
from personas.segment.segmenter import PersonaSegmenter

FEATURES = [
    "recency_days",
    "avg_order_value",
    "return_rate",
    "orders_per_month",
    "category_diversity",
    "email_open_rate",
]


def blobs(
    n: int = 3000, k: int = 5, seed: int = 0, tiny: int = 0
) -> tuple[pd.DataFrame, np.ndarray]:
    """Customers with k planted groups, shaped like catalogue features (plus ``tiny`` extra)."""
    Z, y = make_blobs(
        n_samples=n,
        centers=k,
        n_features=len(FEATURES),
        cluster_std=0.6,
        random_state=seed,
        center_box=(-6, 6),
    )
    if tiny:
        rng = np.random.default_rng(seed)
        Z = np.vstack([Z, rng.normal(12, 0.2, size=(tiny, len(FEATURES)))])
        y = np.concatenate([y, np.full(tiny, k)])
    X = pd.DataFrame(Z, columns=FEATURES)
    X["frequency"] = 3
    X.index = pd.Index([f"c{i:05d}" for i in range(len(X))], name="customer_id")
    return X, y


def test_planted_k_is_chosen_and_recovered() -> None:
    X, y = blobs(k=5)
    seg = PersonaSegmenter(k_range=(3, 8), n_bootstrap=3, random_state=0).fit(X)
    assert seg.k_ == 5
    assert adjusted_rand_score(y, seg.labels_) > 0.95
    c = seg.candidates_
    assert set(c["algorithm"]) == {"kmeans", "gmm", "ward"} and c["chosen"].sum() == 1
    assert {"silhouette", "calinski_harabasz", "davies_bouldin", "bic", "stability"} <= set(c)
    assert c.loc[c["algorithm"] == "gmm", "bic"].notna().all()
    assert 0.9 <= seg.stability_ <= 1.0


def test_small_clusters_are_merged_never_published() -> None:
    X, _ = blobs(n=2000, k=3, tiny=20)
    seg = PersonaSegmenter(
        k=4, algorithms=("kmeans",), n_bootstrap=0, min_persona_size=100, random_state=0
    ).fit(X)
    sizes = np.bincount(seg.labels_[seg.labels_ >= 0])
    assert sizes.min() >= 100 and seg.k_ == 3
    assert len(seg.merged_) == 1


def test_customers_without_history_get_explicit_groups() -> None:
    X, _ = blobs(n=1500, k=3)
    X.iloc[:40, X.columns.get_loc("frequency")] = 1
    X["lifecycle"] = np.where(X["frequency"] >= 2, "repeat", "one_time")
    X.loc[X.index[:5], "lifecycle"] = "prospect"
    seg = PersonaSegmenter(k=3, algorithms=("kmeans",), n_bootstrap=0, random_state=0).fit(X)
    assert (seg.labels_[5:40] == -1).all() and (seg.labels_[:5] == -2).all()
    assert np.isnan(seg.confidence_[:40]).all()
    assert (seg.labels_[40:] >= 0).all() and seg.n_profiled_ == len(X) - 40
    ok = seg.confidence_[40:]
    assert ((ok >= 0) & (ok <= 1)).all()


def test_same_seed_same_personas_and_model_round_trips(tmp_path) -> None:
    X, _ = blobs(k=4)
    kw = dict(k_range=(3, 5), n_bootstrap=2, random_state=3)
    a = PersonaSegmenter(**kw).fit(X)
    b = PersonaSegmenter(**kw).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    pd.testing.assert_frame_equal(a.candidates_, b.candidates_)
    save_model(a, tmp_path / "m.skops")
    loaded = load_model(tmp_path / "m.skops")
    np.testing.assert_array_equal(loaded.predict(X), a.labels_)
    assert isinstance(loaded.candidates_, pd.DataFrame)


def test_assignment_of_a_million_customers_is_vectorised() -> None:
    X, _ = blobs(n=2000, k=4)
    seg = PersonaSegmenter(k=4, algorithms=("kmeans",), n_bootstrap=0, random_state=0).fit(X)
    big = X.sample(300_000, replace=True, random_state=1)
    labels, conf = seg.assign(big)
    assert len(labels) == len(big) and np.isfinite(conf).all()
    np.testing.assert_array_equal(labels[:50], seg.predict(big.iloc[:50]))


@pytest.mark.parametrize(
    "bad", [dict(k=1), dict(k="many"), dict(k_range=(1, 4)), dict(algorithms=("dbscan",))]
)
def test_bad_parameters_are_named(bad: dict) -> None:
    X, _ = blobs(n=300, k=3)
    with pytest.raises(ValueError, match=next(iter(bad))):
        PersonaSegmenter(**bad).fit(X)


def test_identity_keeps_ids_through_relabelling_and_reports_changes() -> None:
    rng = np.random.default_rng(0)
    idx = pd.Index([f"c{i}" for i in range(900)])
    prev = pd.Series(np.repeat(["P1", "P2", "P3"], 300), index=idx)
    # same customers, clusters renumbered: 0 <- P3, 1 <- P1, 2 <- P2
    cur = pd.Series(np.repeat([1, 2, 0], 300), index=idx)
    ident = match(cur, prev, {"P1": "A", "P2": "B", "P3": "C"})
    assert ident.ids == {1: "P1", 2: "P2", 0: "P3"} and ident.names[0] == "C"
    assert not ident.new and not ident.vanished
    # P2 splits into two new clusters, P3 vanishes into P1
    cur2 = pd.Series(
        np.concatenate(
            [np.zeros(300), rng.permutation(np.repeat([1, 2], 150)), np.zeros(300)]
        ).astype(int),
        index=idx,
    )
    ident2 = match(cur2, prev, {})
    assert ident2.ids[0] == "P1"
    assert {"from": "P2", "into": sorted(ident2.split[0]["into"])} == {
        "from": "P2",
        "into": sorted([ident2.ids[1], ident2.ids[2]]),
    }
    assert ident2.merged and set(ident2.merged[0]["from"]) == {"P1", "P3"}
    assert "P3" in ident2.vanished and len(ident2.new) == 1
    m = migration_matrix(cur2.map(ident2.ids), prev)
    assert m["customers"].sum() == 900


def test_first_ids_follow_size_order() -> None:
    assert first_ids(np.array([0, 0, 1, -1])).ids == {0: "P1", 1: "P2"}


def test_traits_and_rules_explain_a_planted_difference() -> None:
    X, y = blobs(n=2000, k=3)
    X.loc[y == 0, "return_rate"] += 50  # group 0 returns far more than any other difference
    tr = traits(X, y, FEATURES)
    top0 = tr[0][0]
    assert top0.feature == "return_rate" and top0.direction == "higher" and top0.effect_size > 1
    rules = surrogate_rules(X, y, FEATURES, max_depth=3)
    assert rules.fidelity > 0.95 and rules.depth <= 3
    assert all(r["conditions"] for r in rules.per_persona[0])


def test_names_are_unique_and_deterministic() -> None:
    stats = [PersonaStats(i, 0.2, {}, {}, {}, {"recency_days": 1.0}) for i in range(4)]
    a, b = make_names(stats), make_names(stats)
    assert a == b and len(set(a.values())) == 4
