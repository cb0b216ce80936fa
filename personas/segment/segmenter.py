"""``PersonaSegmenter``: preprocess, choose algorithm and k by evidence, assign everyone.

The model is fitted on a representative sample (clustering cost grows with n, the structure
does not), then every customer is assigned with a vectorised nearest-centroid or posterior step,
which takes seconds for millions. Customers with too little history to cluster meaningfully
(prospects, returns only, a single purchase) are not clustered; they get explicit groups so they
are never silently mixed into a persona.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted

from personas.errors import NotEnoughDataError, SchemaError
from personas.segment.preprocess import choose_features, make_preprocessor
from personas.segment.selection import ALGORITHMS, choose, evaluate, fit_candidate, sqdist
from personas.threads import with_model_threads

log = logging.getLogger(__name__)

# Groups for customers who are not clustered (label values below 0).
NOT_PROFILED = {
    -1: ("NEW", "New customers (one purchase)"),
    -2: ("PROSPECT", "Prospects (no purchase yet)"),
    -3: ("RETURNS", "Returns only (no purchase in the window)"),
}
_LIFECYCLE_LABEL = {"one_time": -1, "prospect": -2, "returns_only": -3}


def derive_lifecycle(X: pd.DataFrame) -> np.ndarray:
    """Each customer's lifecycle stage: prospect, returns_only, one_time or repeat.

    Our features carry a ``lifecycle`` column. A table from elsewhere (a CRM extract) often has
    only the purchase counts: then ``frequency`` (purchase orders) decides, a missing count is a
    prospect, and a zero count is told apart by ``is_prospect`` or by a negative ``monetary``
    (net spend: returns only). Guessing instead would label prospects "one purchase".
    """
    if "lifecycle" in X.columns:
        return X["lifecycle"].astype(str).to_numpy()
    if "frequency" not in X.columns:
        raise SchemaError(
            "the table has neither a lifecycle column (prospect, one_time, returns_only, "
            "repeat) nor frequency (purchase orders per customer); add one of them so that "
            "prospects and new customers are told apart"
        )
    f = pd.to_numeric(X["frequency"], errors="coerce").to_numpy()
    out = np.where(f >= 2, "repeat", np.where(f == 1, "one_time", "prospect")).astype(object)
    zero = f == 0
    if zero.any():
        if "is_prospect" in X.columns:
            prospect = X["is_prospect"].fillna(False).astype(bool).to_numpy()
        elif "monetary" in X.columns:
            prospect = ~(pd.to_numeric(X["monetary"], errors="coerce").fillna(0).to_numpy() < 0)
        else:
            raise SchemaError(
                f"{int(zero.sum()):,} customers have frequency 0 and the table has no "
                "lifecycle, is_prospect or monetary column to tell prospects from customers "
                "with returns only; add one of them"
            )
        out[zero & ~prospect] = "returns_only"
    return out.astype(str)


class PersonaSegmenter(ClusterMixin, BaseEstimator):
    """Discover personas among customers with enough purchase history.

    Parameters
    ----------
    k : int or "auto"
        Number of personas, or "auto" to choose it over ``k_range`` by the selection rule.
    k_range : tuple of int
        Inclusive range of k tried when ``k="auto"``.
    algorithms : tuple of str
        Candidates among "kmeans", "gmm" (diagonal Gaussian mixture) and "ward"
        (hierarchical, fitted on a sub-sample and extended by nearest centroid).
    sample_size : int
        Customers the models are fitted on; everyone is then assigned.
    n_bootstrap : int
        Bootstrap refits per candidate for the stability score.
    min_orders : int
        Customers with fewer purchase orders get a "not yet profiled" group instead of a
        persona (label -1 one purchase, -2 prospect, -3 returns only).
    min_persona_size : int or None
        Clusters smaller than this are merged into their nearest persona. Default:
        max(50, 1% of the profiled customers).
    skew, group_weights, include_groups, exclude_features, categorical, max_missing
        Preprocessing options ("log", "quantile" or "none" for skewed features), see
        :mod:`personas.segment.preprocess`.
    min_stability, tolerance
        Selection rule parameters, see :func:`personas.segment.selection.choose`.
    random_state : int
        Seed for sampling and every fit: same input and seed give the same personas.

    Attributes
    ----------
    k_, algorithm_ : int, str
        The chosen number of personas and algorithm.
    candidates_ : DataFrame
        Every candidate with its silhouette, Calinski-Harabasz, Davies-Bouldin, BIC and
        stability; ``chosen`` marks the winner.
    labels_ : ndarray
        Persona index per row of the data passed to ``fit`` (negative for not profiled).
    confidence_ : ndarray
        Assignment confidence per row (NaN for not profiled).
    stability_ : float
        Bootstrap stability (mean ARI) of the chosen model.
    features_ : list of str
        Columns the clustering used; ``dropped_features_`` says why the others were not.
    merged_ : dict
        Small clusters merged away: original index -> persona it was merged into.
    """

    def __init__(
        self,
        k: int | str = "auto",
        k_range: tuple[int, int] = (3, 9),
        algorithms: tuple[str, ...] = ALGORITHMS,
        sample_size: int = 20_000,
        n_bootstrap: int = 5,
        min_orders: int = 2,
        min_persona_size: int | None = None,
        skew: str = "log",
        group_weights: str | dict[str, float] = "none",
        include_groups: list[str] | None = None,
        exclude_features: list[str] | None = None,
        categorical: list[str] | None = None,
        max_missing: float = 0.8,
        min_stability: float = 0.8,
        tolerance: float = 0.02,
        random_state: int = 0,
    ):
        self.k = k
        self.k_range = k_range
        self.algorithms = algorithms
        self.sample_size = sample_size
        self.n_bootstrap = n_bootstrap
        self.min_orders = min_orders
        self.min_persona_size = min_persona_size
        self.skew = skew
        self.group_weights = group_weights
        self.include_groups = include_groups
        self.exclude_features = exclude_features
        self.categorical = categorical
        self.max_missing = max_missing
        self.min_stability = min_stability
        self.tolerance = tolerance
        self.random_state = random_state

    @with_model_threads
    def fit(
        self,
        X: pd.DataFrame,
        y: object = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> PersonaSegmenter:
        """Choose and fit the persona model on ``X`` (features, one row per customer)."""
        if not isinstance(X, pd.DataFrame):
            raise TypeError("X must be a pandas DataFrame of features (one row per customer)")
        self._check_params()
        profiled = self._profiled_mask(X)
        Xp = X.loc[profiled]
        choice = choose_features(
            Xp, self.include_groups, self.exclude_features, self.max_missing, self.categorical
        )
        if not choice.numeric:
            raise NotEnoughDataError(
                f"no usable numeric feature to segment on: dropped {choice.dropped}"
            )
        self.features_ = choice.columns
        self.dropped_features_ = choice.dropped
        self.feature_groups_ = choice.groups
        min_size = self._min_size(len(Xp))
        k_values = self._k_values(len(Xp), min_size)
        rng = np.random.default_rng(self.random_state)
        idx = np.sort(rng.choice(len(Xp), min(self.sample_size, len(Xp)), replace=False))
        sample = Xp.iloc[idx]
        self.preprocessor_ = make_preprocessor(choice, self.skew, self.group_weights)
        Zs = self.preprocessor_.fit_transform(sample[self.features_])
        algos = tuple(self.algorithms)
        table, fitted = evaluate(
            Zs,
            algos,
            k_values,
            self.n_bootstrap,
            stability_size=min(len(Zs), 2000),
            silhouette_size=min(len(Zs), 5000),
            seed=self.random_state,
            progress=progress,
        )
        if self.k == "auto":
            best = choose(
                table, self.min_stability, self.tolerance, min_size_share=min_size / max(len(Xp), 1)
            )
            algo, k = str(best["algorithm"]), int(best["k"])
        else:
            algo, k = algos[0], int(self.k)
            if (algo, k) not in fitted:
                fitted[(algo, k)] = fit_candidate(algo, k, Zs, self.random_state)
        table["chosen"] = (table["algorithm"] == algo) & (table["k"] == k)
        self.candidates_ = table
        self.algorithm_ = algo
        row = table[table["chosen"]]
        self.stability_ = float(row["stability"].iloc[0]) if len(row) else float("nan")
        self.model_ = fitted[(algo, k)]
        self.component_persona_ = np.arange(len(self.model_.centroids))
        self.merged_ = self._merge_small(Xp, min_size)
        labels_p, conf_p = self._assign(Xp)
        self.k_ = len(np.unique(labels_p))
        self.min_persona_size_ = min_size
        labels = self._unprofiled_labels(X, profiled)
        conf = np.full(len(X), np.nan)
        labels[profiled] = labels_p
        conf[profiled] = conf_p
        self.labels_ = labels
        self.confidence_ = conf
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_profiled_ = int(profiled.sum())
        return self

    @with_model_threads
    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Persona index per customer (negative for customers not yet profiled)."""
        return self.assign(X)[0]

    def assign(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Labels and confidence per customer; works on new customers and prospects."""
        check_is_fitted(self, "model_")
        missing = [c for c in self.features_ if c not in X.columns]
        if missing:
            raise ValueError(
                f"X lacks feature column(s) {missing} the model was fitted on; "
                "compute features with the same lake tables"
            )
        profiled = self._profiled_mask(X)
        labels = self._unprofiled_labels(X, profiled)
        conf = np.full(len(X), np.nan)
        if profiled.any():
            lp, cp = self._assign(X.loc[profiled])
            labels[profiled] = lp
            conf[profiled] = cp
        return labels, conf

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """The preprocessed feature space the personas live in."""
        check_is_fitted(self, "model_")
        return self.preprocessor_.transform(X[self.features_])

    # ---- internals ----------------------------------------------------------------------
    def _assign(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        out_l = np.empty(len(X), dtype=np.int64)
        out_c = np.empty(len(X), dtype=float)
        step = 250_000
        for i in range(0, len(X), step):
            Z = self.preprocessor_.transform(X.iloc[i : i + step][self.features_])
            out_l[i : i + step], out_c[i : i + step] = self._score(Z)
        return out_l, out_c

    def _score(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Final persona and confidence for preprocessed rows, honouring merged clusters.

        The persona comes from the model (highest posterior for GMM, nearest centroid
        otherwise). Confidence is the same measure for every algorithm, so it stays comparable
        when a refresh picks another one: the relative margin 1 - d1/d2 between the distance
        to the customer's persona and to the nearest other persona (0 = on the border,
        1 = at the persona's centre).
        """
        k_final = int(self.component_persona_.max()) + 1
        d = np.sqrt(sqdist(Z, self.model_.centroids))
        per = np.full((len(Z), k_final), np.inf)
        for j, lab in enumerate(self.component_persona_):
            per[:, lab] = np.minimum(per[:, lab], d[:, j])
        if self.model_.algorithm == "gmm":
            post = self.model_.model.predict_proba(Z)
            agg = np.zeros((len(Z), k_final))
            np.add.at(agg.T, self.component_persona_, post.T)
            labels = agg.argmax(axis=1)
        else:
            labels = per.argmin(axis=1)
        if k_final < 2:
            return labels, np.ones(len(Z))
        own = per[np.arange(len(Z)), labels]
        per[np.arange(len(Z)), labels] = np.inf
        other = per.min(axis=1)
        conf = np.where(other > 0, 1.0 - own / np.maximum(other, 1e-12), 0.0)
        return labels, np.clip(conf, 0.0, 1.0)

    def _merge_small(self, X: pd.DataFrame, min_size: int) -> dict[int, int]:
        """Fold clusters below the minimum size into the nearest persona, smallest first.

        Returns {original cluster: cluster it was folded into}. Labels are then renumbered
        0..k-1 by decreasing size, so persona indices do not depend on the algorithm's order.
        """
        merged: dict[int, int] = {}
        cent = self.model_.centroids
        while True:
            labels, _ = self._assign(X)
            sizes = np.bincount(labels, minlength=int(self.component_persona_.max()) + 1)
            small = [j for j in range(len(sizes)) if sizes[j] < min_size]
            if not small or len(sizes) <= 2:
                break
            j = min(small, key=lambda s: (sizes[s], s))
            members = np.flatnonzero(self.component_persona_ == j)
            others = np.flatnonzero(self.component_persona_ != j)
            d = ((cent[others][:, None, :] - cent[members][None, :, :]) ** 2).sum(-1).min(1)
            target = int(self.component_persona_[others[int(d.argmin())]])
            for m in members:
                merged[int(m)] = target
            new = np.where(self.component_persona_ == j, target, self.component_persona_)
            self.component_persona_ = np.unique(new, return_inverse=True)[1]
        labels, _ = self._assign(X)
        sizes = np.bincount(labels, minlength=int(self.component_persona_.max()) + 1)
        order = np.argsort(-sizes, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        self.component_persona_ = rank[self.component_persona_]
        return merged

    def _profiled_mask(self, X: pd.DataFrame) -> np.ndarray:
        if "frequency" in X.columns:
            f = pd.to_numeric(X["frequency"], errors="coerce").fillna(0).to_numpy()
            return f >= self.min_orders
        return np.ones(len(X), dtype=bool)

    def _unprofiled_labels(self, X: pd.DataFrame, profiled: np.ndarray) -> np.ndarray:
        """-1/-2/-3 by lifecycle for the customers not profiled (the rest are set later)."""
        labels = np.full(len(X), -1, dtype=np.int64)
        rest = ~profiled
        if rest.any():
            lc = derive_lifecycle(X.loc[rest])
            sub = labels[rest]
            for name, lab in _LIFECYCLE_LABEL.items():
                sub[lc == name] = lab
            labels[rest] = sub
        return labels

    def _min_size(self, n: int) -> int:
        if self.min_persona_size is not None:
            return int(self.min_persona_size)
        return int(max(50, np.ceil(0.01 * n)))

    def _k_values(self, n: int, min_size: int) -> list[int]:
        if self.k != "auto":
            return [int(self.k)]
        lo, hi = self.k_range
        hi = min(hi, max(2, n // max(min_size, 1)))
        if n < 2 * min_size or hi < 2:
            raise NotEnoughDataError(
                f"{n} profiled customers cannot form two personas of at least {min_size} "
                "customers; lower min_persona_size or add data"
            )
        return list(range(max(2, lo), hi + 1))

    def _check_params(self) -> None:
        if self.k != "auto" and (not isinstance(self.k, int | np.integer) or self.k < 2):
            raise ValueError(f"k={self.k!r}; expected 'auto' or an integer >= 2")
        lo, hi = self.k_range
        if lo < 2 or hi < lo:
            raise ValueError(f"k_range={self.k_range!r}; expected (low >= 2, high >= low)")
        bad = [a for a in self.algorithms if a not in ALGORITHMS]
        if bad:
            raise ValueError(f"algorithms {bad} unknown; expected some of {ALGORITHMS}")
