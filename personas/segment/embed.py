"""A 2-D map of customers in persona space (UMAP), fitted on a capped sample.

UMAP compiles with numba on first use in a process (10-40 s here) and projecting a million
points takes minutes, while a browser is comfortable with tens of thousands of points: so the
map is fitted on a stratified sample and the report says it is a sample.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def sample_for_map(labels: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Row positions of a sample stratified by persona (each persona keeps its share)."""
    idx = np.flatnonzero(labels >= 0)
    if len(idx) <= cap:
        return idx
    rng = np.random.default_rng(seed)
    parts = []
    for k in np.unique(labels[idx]):
        members = idx[labels[idx] == k]
        take = max(1, round(cap * len(members) / len(idx)))
        parts.append(rng.choice(members, min(take, len(members)), replace=False))
    return np.sort(np.concatenate(parts))


def umap_2d(
    Z: np.ndarray, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1
) -> np.ndarray:
    """2-D UMAP coordinates of the rows of Z (deterministic for a seed)."""
    if len(Z) < 5:
        return np.zeros((len(Z), 2))
    import umap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_jobs overridden by random_state: expected
        reducer = umap.UMAP(
            n_components=2,
            n_neighbors=min(n_neighbors, len(Z) - 1),
            min_dist=min_dist,
            random_state=seed,
            init="spectral",
        )
        return reducer.fit_transform(Z).astype("float32")


def persona_map(
    customer_ids: pd.Index,
    Z: np.ndarray,
    labels: np.ndarray,
    persona_ids: np.ndarray,
    cap: int = 20_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Table of sampled customers with map coordinates: customer_id, x, y, persona_id."""
    pos = sample_for_map(labels, cap, seed)
    xy = umap_2d(Z[pos], seed=seed)
    return pd.DataFrame(
        {
            "customer_id": np.asarray(customer_ids)[pos].astype(str),
            "x": xy[:, 0],
            "y": xy[:, 1],
            "persona_id": np.asarray(persona_ids)[pos].astype(str),
        }
    )
