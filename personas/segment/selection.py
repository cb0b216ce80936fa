"""Choosing the clustering algorithm and the number of personas by evidence.

Every candidate (algorithm x k) is scored on the same sample with internal indices
(silhouette on a sub-sample, Calinski-Harabasz, Davies-Bouldin, BIC where the model has a
likelihood) and with *stability*: the mean adjusted Rand index between the candidate's labels
and the labels of the same algorithm refitted on bootstrap resamples. Personas that change
when a tenth of the customers change are not personas.

The rule that picks the winner (documented in ``docs/personas.md``):

1. keep candidates whose stability is at least ``min_stability`` (all, if none reaches it);
2. among them, take the highest silhouette;
3. among candidates whose silhouette is within ``tolerance`` (relative, default 2%) of the best,
   prefer fewer personas (simpler is easier to act on), then the more stable one.

The tolerance is relative because silhouettes of real customer data are small and flat
(0.10-0.25): an absolute margin of 0.01 would already let a coarser model win on noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)
from sklearn.mixture import GaussianMixture

ALGORITHMS = ("kmeans", "gmm", "ward")
WARD_MAX = 3000  # Ward linkage is quadratic in memory: fit it on a sub-sample this size


@dataclass
class Fitted:
    """A clustering fitted on a sample, able to assign any point to a persona."""

    algorithm: str
    k: int
    centroids: np.ndarray
    model: object

    def predict(self, Z: np.ndarray) -> np.ndarray:
        if self.algorithm == "gmm":
            return self.model.predict(Z)
        return _nearest(Z, self.centroids)

    def confidence(self, Z: np.ndarray) -> np.ndarray:
        """How clearly a customer belongs to its persona, in [0, 1].

        GMM: posterior probability. Centroid methods: 1 - d1/d2 (relative margin between the
        nearest and the second-nearest centroid), 0 when equidistant.
        """
        if self.algorithm == "gmm":
            return self.model.predict_proba(Z).max(axis=1)
        d = sqdist(Z, self.centroids)
        d.sort(axis=1)
        if d.shape[1] < 2:
            return np.ones(len(Z))
        d1, d2 = np.sqrt(d[:, 0]), np.sqrt(d[:, 1])
        return np.where(d2 > 0, 1.0 - d1 / np.maximum(d2, 1e-12), 0.0)


def fit_candidate(algorithm: str, k: int, Z: np.ndarray, seed: int) -> Fitted:
    """Fit one algorithm with k clusters on Z (already preprocessed)."""
    if algorithm == "kmeans":
        m = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(Z)
        return Fitted(algorithm, k, m.cluster_centers_, m)
    if algorithm == "gmm":
        m = GaussianMixture(
            n_components=k,
            covariance_type="diag",
            n_init=1,
            max_iter=200,
            init_params="k-means++",
            random_state=seed,
            reg_covar=1e-3,
        ).fit(Z)
        return Fitted(algorithm, k, m.means_, m)
    if algorithm == "ward":
        rng = np.random.default_rng(seed)
        sub = Z if len(Z) <= WARD_MAX else Z[rng.choice(len(Z), WARD_MAX, replace=False)]
        labels = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(sub)
        cent = np.vstack([sub[labels == j].mean(axis=0) for j in range(k)])
        return Fitted(algorithm, k, cent, None)
    raise ValueError(f"unknown algorithm {algorithm!r}; expected one of {ALGORITHMS}")


def evaluate(
    Z: np.ndarray,
    algorithms: tuple[str, ...],
    k_values: list[int],
    n_bootstrap: int,
    stability_size: int,
    silhouette_size: int,
    seed: int,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[pd.DataFrame, dict[tuple[str, int], Fitted]]:
    """Score every candidate; returns the table and the fitted candidates."""
    rows = []
    fitted: dict[tuple[str, int], Fitted] = {}
    rng = np.random.default_rng(seed)
    sil_idx = rng.choice(len(Z), min(silhouette_size, len(Z)), replace=False)
    stab_idx = rng.choice(len(Z), min(stability_size, len(Z)), replace=False)
    total = len(algorithms) * len(k_values)
    done = 0
    for algo in algorithms:
        for k in k_values:
            if progress:
                progress(f"{algo} k={k}", done, total)
            f = fit_candidate(algo, k, Z, seed)
            labels = f.predict(Z)
            fitted[(algo, k)] = f
            sizes = np.bincount(labels, minlength=k)
            row = {"algorithm": algo, "k": k, "min_size_share": float(sizes.min() / len(Z))}
            if len(np.unique(labels)) < 2:
                row.update(silhouette=np.nan, calinski_harabasz=np.nan, davies_bouldin=np.nan)
            else:
                sl = labels[sil_idx]
                row["silhouette"] = (
                    float(silhouette_score(Z[sil_idx], sl)) if len(np.unique(sl)) > 1 else np.nan
                )
                row["calinski_harabasz"] = float(calinski_harabasz_score(Z, labels))
                row["davies_bouldin"] = float(davies_bouldin_score(Z, labels))
            row["bic"] = float(f.model.bic(Z)) if algo == "gmm" else np.nan
            row["stability"] = stability(
                algo, k, Z[stab_idx], f.predict(Z[stab_idx]), n_bootstrap, seed
            )
            rows.append(row)
            done += 1
    if progress:
        progress("done", total, total)
    return pd.DataFrame(rows), fitted


def stability(
    algo: str, k: int, Z: np.ndarray, reference: np.ndarray, n_bootstrap: int, seed: int
) -> float:
    """Mean ARI between ``reference`` labels and refits on bootstrap resamples of ``Z``."""
    if n_bootstrap <= 0:
        return float("nan")
    rng = np.random.default_rng(seed + 1)
    scores = []
    for b in range(n_bootstrap):
        idx = rng.choice(len(Z), len(Z), replace=True)
        f = fit_candidate(algo, k, Z[idx], seed + 100 + b)
        scores.append(adjusted_rand_score(reference, f.predict(Z)))
    return float(np.mean(scores))


def choose(
    table: pd.DataFrame,
    min_stability: float = 0.8,
    tolerance: float = 0.02,
    min_size_share: float = 0.0,
) -> pd.Series:
    """Apply the documented selection rule; returns the winning row."""
    t = table.dropna(subset=["silhouette"]).copy()
    if t.empty:
        raise ValueError(
            "no candidate produced two or more clusters; the data has no structure "
            "to segment (check that features vary between customers)"
        )
    sized = t[t["min_size_share"] >= min_size_share]
    t = sized if not sized.empty else t
    stable = t[t["stability"] >= min_stability]
    pool = stable if not stable.empty else t
    best = pool["silhouette"].max()
    near = pool[pool["silhouette"] >= best - tolerance * abs(best)]
    order = near.sort_values(["k", "stability", "silhouette"], ascending=[True, False, False])
    return order.iloc[0]


def sqdist(Z: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances of rows to centroids (one matrix product, no n x k x d)."""
    return ((Z * Z).sum(1)[:, None] - 2 * Z @ C.T + (C * C).sum(1)[None, :]).clip(min=0)


def _nearest(Z: np.ndarray, C: np.ndarray, chunk: int = 200_000) -> np.ndarray:
    out = np.empty(len(Z), dtype=np.int64)
    for i in range(0, len(Z), chunk):
        out[i : i + chunk] = sqdist(Z[i : i + chunk], C).argmin(axis=1)
    return out
