"""A 2-D map of customers in persona space (UMAP), fitted on a capped sample.

Projecting a million points takes minutes while a browser is comfortable with tens of
thousands, so the map is fitted on a stratified sample and the report says it is a sample.

UMAP and pynndescent are numba code compiled on first use in every process: measured here on
a 6,000-point map, importing umap cost 23-49 CPU-s and the first fit 20-27 CPU-s more, against
7-10 CPU-s for the fit itself. Two things stop paying that in every refresh:

- the k nearest neighbours come from scikit-learn's exact search (compiled C, no numba) and
  are handed to UMAP as ``precomputed_knn``: pynndescent's approximate search (and, under 4,096
  points, UMAP's all-pairs path calling a numba metric from Python) are never compiled or run;
- every numba function of umap and pynndescent is compiled with numba's on-disk cache
  (:func:`enable_numba_cache`): most are not declared ``cache=True`` upstream, so we switch
  caching on for them after import. The cache lives in ``NUMBA_CACHE_DIR`` when set, else in
  the user's cache folder (``$XDG_CACHE_HOME/personas/numba``, default
  ``~/.cache/personas/numba``); the first map on a machine compiles and fills it, later
  processes load the machine code from it. Numba keys the cache on the source's content and
  the CPU, so an upgraded umap or another machine simply compiles afresh.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

CACHED_PACKAGES = ("umap", "pynndescent")


def numba_cache_dir() -> Path:
    """Where numba keeps compiled UMAP code: ``NUMBA_CACHE_DIR``, else the user's cache."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "personas" / "numba"


def enable_numba_cache() -> int:
    """Import umap with numba's disk cache on for all its numba functions; how many were switched.

    The cache folder must be set before umap is imported: pynndescent's ``cache=True``
    functions are compiled while it is imported. A folder that cannot be created leaves numba
    compiling in memory as before (slower, never wrong).
    """
    cache = numba_cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        log.warning("numba cache folder %s unusable (%s): UMAP compiles in memory", cache, e)
        return 0
    os.environ.setdefault("NUMBA_CACHE_DIR", str(cache))
    import numba
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    numba.config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]
    import umap  # noqa: F401  (imports pynndescent)

    switched = 0
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in CACHED_PACKAGES:
            continue
        for obj in list(vars(module).values()):
            if isinstance(obj, Dispatcher) and isinstance(obj._cache, NullCache):
                obj.enable_caching()
                switched += 1
    return switched


def exact_knn(Z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and distances of each row's k nearest rows (itself first), as UMAP wants them."""
    from sklearn.neighbors import NearestNeighbors

    dist, idx = NearestNeighbors(n_neighbors=k).fit(Z).kneighbors(Z)
    return idx.astype(np.int32), dist.astype(np.float32)


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
    enable_numba_cache()
    import umap

    k = min(n_neighbors, len(Z) - 1)
    knn = exact_knn(Z, k)
    with warnings.catch_warnings():
        # n_jobs overridden by random_state, no search index for transform: both expected
        warnings.simplefilter("ignore")
        reducer = umap.UMAP(
            n_components=2,
            n_neighbors=k,
            min_dist=min_dist,
            random_state=seed,
            init="spectral",
            precomputed_knn=(*knn, None),
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
