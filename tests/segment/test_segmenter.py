"""PersonaSegmenter on data with a known answer, its estimator contract and its model file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score

from personas.errors import RunError
from personas.runs import load_model, save_model
from personas.segment.segmenter import PersonaSegmenter

DATA = Path(__file__).parent / "data"
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


def test_clone_round_trips_every_parameter() -> None:
    seg = PersonaSegmenter(
        k=4, k_range=(3, 6), algorithms=("kmeans", "gmm"), sample_size=500, random_state=7
    )
    twin = clone(seg)
    assert twin is not seg
    assert twin.get_params() == seg.get_params()
    assert twin.get_params()["algorithms"] == ("kmeans", "gmm")


@pytest.mark.parametrize("method", ["predict", "assign", "transform"])
def test_an_unfitted_model_raises_not_fitted_error(method: str) -> None:
    X, _ = blobs(n=200, k=3)
    with pytest.raises(NotFittedError):
        getattr(PersonaSegmenter(), method)(X)


def test_a_model_file_from_the_flat_layout_still_loads() -> None:
    """tests/segment/data/model-0.1.skops was saved by personas 0.1 (personas.segment,
    personas.selection, personas.preprocess): it loads and assigns as it did then."""
    X, _ = make_blobs(600, n_features=4, centers=3, random_state=0)
    df = pd.DataFrame(X, columns=["recency_days", "frequency_x", "monetary", "avg_order_value"])
    df["frequency"] = 3
    df.index = pd.Index([f"c{i}" for i in range(600)], name="customer_id")
    seg = load_model(DATA / "model-0.1.skops")
    fresh = PersonaSegmenter(
        k=3, algorithms=("kmeans",), n_bootstrap=0, random_state=0, min_persona_size=20
    ).fit(df)
    np.testing.assert_array_equal(seg.predict(df), fresh.labels_)
    assert seg.k_ == 3 and list(seg.features_) == ["recency_days", "monetary", "avg_order_value"]


def test_a_model_file_with_unknown_types_is_refused_with_the_fix(tmp_path) -> None:
    import zipfile

    src = DATA / "model-0.1.skops"
    bad = tmp_path / "model.skops"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            body = zin.read(item)
            if item.filename == "schema.json":
                body = body.replace(b'"personas.selection"', b'"personas.elsewhere"')
            zout.writestr(item, body)
    with pytest.raises(RunError, match="refit it with `personas refresh`"):
        load_model(bad)


def test_a_table_without_lifecycle_places_prospects_and_returns_correctly() -> None:
    """A CRM extract without `lifecycle` used to label everyone unprofiled "one purchase"."""
    from personas.errors import SchemaError
    from personas.segment.segmenter import NOT_PROFILED, derive_lifecycle

    X, _ = blobs(n=600, k=3)
    X["frequency"] = 3.0
    seg = PersonaSegmenter(k=3, algorithms=("kmeans",), n_bootstrap=0, random_state=0).fit(X)
    crm = X.iloc[:4].copy()
    crm["frequency"] = [np.nan, 0.0, 0.0, 1.0]  # no purchase row, returns only, ..., one order
    crm["monetary"] = [np.nan, -40.0, 0.0, 25.0]
    labels = seg.predict(crm)
    assert [NOT_PROFILED[int(v)][0] for v in labels] == ["PROSPECT", "RETURNS", "PROSPECT", "NEW"]
    assert list(derive_lifecycle(crm)) == ["prospect", "returns_only", "prospect", "one_time"]
    with pytest.raises(SchemaError, match="no lifecycle, is_prospect or monetary column"):
        seg.predict(crm.drop(columns=["monetary"]))
    with pytest.raises(SchemaError, match="neither a lifecycle column"):
        derive_lifecycle(crm.drop(columns=["frequency", "monetary"]))
