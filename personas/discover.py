"""Discover personas: a pure fit (features in, fitted personas out), then the run folder.

:func:`fit_personas` chooses and fits the model, matches identities to the previous
publication, builds profiles, the migration table and the map, touching no file;
:func:`discover` reads the features, runs it and hands the result to
:func:`personas.runs.write_run`, marking the run "failed" if anything goes wrong.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from personas import runs
from personas.config import SegmentationConfig
from personas.diskspace import disk_full, is_disk_full
from personas.features.build import load_activity, load_catalog, load_features
from personas.features.catalog import display_names
from personas.features.kpis import run_kpis
from personas.profile import identity as ident
from personas.profile.profiles import build_profiles, dumps
from personas.publish.audiences import with_lifetime
from personas.segment.embed import persona_map
from personas.segment.likely import place_unprofiled
from personas.segment.segmenter import PersonaSegmenter, derive_lifecycle
from personas.threads import with_model_threads

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]

SELECTION_RULE = (
    "keep candidates with bootstrap stability >= min_stability (all if none) and no "
    "persona below the minimum size; take the highest silhouette; among those within "
    "a relative tolerance of it (default 2%) prefer fewer personas, then higher stability"
)


@dataclass
class DiscoverResult:
    run_dir: Path
    k: int
    algorithm: str
    stability: float
    fidelity: float
    seconds: float


@with_model_threads
def fit_personas(
    X: pd.DataFrame,
    catalog: dict[str, Any],
    config: SegmentationConfig | None = None,
    previous: runs.Run | None = None,
    progress: Progress | None = None,
    activity: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> runs.RunOutput:
    """Fit personas on the features ``X`` (one row per customer); no file is read or written.

    ``catalog`` is the features' ``catalog.json`` (as-of date, lake fingerprint, the data's own
    category names); ``previous`` the published run whose persona ids and names are kept;
    ``activity`` the monthly activity and first purchases of the feature build (the retention
    and acquisition KPIs come from them).
    """
    t0 = time.perf_counter()
    cfg = config or SegmentationConfig()
    seg = PersonaSegmenter(**cfg.segmenter_kwargs()).fit(X, progress=progress)
    labels = seg.labels_
    current = pd.Series(labels, index=X.index.astype(str))
    prev_assign = None
    if previous is not None:
        a = previous.assignments
        prev_assign = pd.Series(a["persona_id"].to_numpy(), index=a["customer_id"].astype(str))
        names = {p["id"]: p["name"] for p in previous.profiles["personas"]}
        identity = ident.match(current, prev_assign, names, previous.run_id)
    else:
        identity = ident.first_ids(labels)
    chosen = seg.candidates_[seg.candidates_["chosen"]].iloc[0].to_dict()
    model = {
        "algorithm": seg.algorithm_,
        "k": int(seg.k_),
        "stability": seg.stability_,
        "silhouette": chosen.get("silhouette"),
        "selection_rule": SELECTION_RULE,
        "features": list(seg.features_),
        "dropped_features": seg.dropped_features_,
        "merged_small_clusters": {str(k): v for k, v in seg.merged_.items()},
        "sample_size": int(min(cfg.sample_size, seg.n_profiled_)),
        "random_state": cfg.random_state,
        "candidates": seg.candidates_.replace({np.nan: None}).to_dict(orient="records"),
    }
    profiles, assignments = profile_personas(
        X, labels, seg.confidence_, seg, identity, model, catalog, cfg
    )
    likely, likely_block = None, None
    if cfg.likely_personas:
        if progress:
            progress("likely personas", 0, 1)
        likely, assignments, likely_block = place_unprofiled(
            X,
            assignments,
            lifecycle_stages(X, labels),
            {p["id"]: p["name"] for p in profiles["personas"]},
            cfg.likely_threshold,
            cfg.random_state,
        )
    assignments = with_lifetime(assignments, X)
    migration = None
    if prev_assign is not None:
        pid = pd.Series(assignments["persona_id"].to_numpy(), index=assignments["customer_id"])
        migration = ident.migration_matrix(pid, prev_assign)
    if progress:
        progress("map", 0, 1)
    prof_mask = labels >= 0
    Z = np.zeros((len(X), 2))
    if prof_mask.any():
        Z = np.zeros((len(X), len(seg.features_)))
        Z[prof_mask] = seg.transform(X.loc[prof_mask])
    pmap = persona_map(
        X.index,
        Z,
        labels,
        assignments["persona_id"].to_numpy(),
        cap=cfg.map_sample,
        seed=cfg.random_state,
    )
    metrics = {
        "model": {k: v for k, v in model.items() if k != "candidates"},
        "candidates": model["candidates"],
        **run_metrics(X, labels, profiles, assignments, catalog, likely_block, activity, seg, t0),
    }
    return runs.RunOutput(
        profiles_json=dumps(profiles),
        assignments=assignments,
        candidates=seg.candidates_,
        identity=identity.to_json(),
        map=pmap,
        metrics=metrics,
        model=seg,
        migration=migration,
        likely=likely,
    )


def discover(
    features_path: str | Path,
    runs_root: str | Path,
    previous_dir: str | Path | None = None,
    config: SegmentationConfig | None = None,
    run_id: str | None = None,
    progress: Progress | None = None,
) -> DiscoverResult:
    """Fit personas on the features and write ``runs_root/<run_id>/``."""
    t0 = time.perf_counter()
    features_path = Path(features_path)
    X = load_features(features_path)
    catalog = load_catalog(features_path)
    previous = previous_publication(previous_dir)
    run_dir = runs.create_run(
        runs_root,
        run_id,
        features=str(features_path),
        as_of=catalog.get("as_of"),
        data_fingerprint=catalog.get("lake_fingerprint"),
        lake_versions=catalog.get("lake_versions"),
    )
    try:
        out = fit_personas(X, catalog, config, previous, progress, load_activity(features_path))
        runs.write_run(run_dir, out)
    except BaseException as e:
        with contextlib.suppress(OSError):  # a full disk may refuse even run.json
            runs.set_status(run_dir, "failed", error=f"{type(e).__name__}: {e}")
        if is_disk_full(e):  # the model, assignments and map: about twice the features
            raise disk_full(runs_root, 2 * features_path.stat().st_size) from None
        raise
    runs.set_status(run_dir, "discovered")
    seg = out.model
    return DiscoverResult(
        run_dir,
        int(seg.k_),
        seg.algorithm_,
        float(seg.stability_),
        float(out.metrics["rules"]["fidelity"]),
        time.perf_counter() - t0,
    )


def run_metrics(
    X: pd.DataFrame,
    labels: np.ndarray,
    profiles: dict[str, Any],
    assignments: pd.DataFrame,
    catalog: dict[str, Any],
    likely_block: dict[str, Any] | None,
    activity: tuple[pd.DataFrame, pd.DataFrame] | None,
    seg: PersonaSegmenter,
    t0: float,
) -> dict[str, Any]:
    """The metrics a refit and an assign run both write about today's customers."""
    return {
        "rules": profiles["rules"],
        "customers": len(X),
        "profiled": int((labels >= 0).sum()),
        "persona_sizes": {p["id"]: p["size"] for p in profiles["personas"]},
        "clv": catalog.get("clv"),
        "likely_persona": likely_block,
        "kpis": None
        if activity is None
        else run_kpis(X, assignments, *activity, int(seg.min_persona_size_)),
        "basis": catalog.get("basis"),
        "seconds": round(time.perf_counter() - t0, 2),
    }


def profile_personas(
    X: pd.DataFrame,
    labels: np.ndarray,
    conf: np.ndarray,
    seg: Any,
    identity: Any,
    model: dict[str, Any],
    catalog: dict[str, Any],
    cfg: SegmentationConfig,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Profiles and assignments of ``labels``: one call for a refit and an assign run
    (:mod:`personas.refresh`), so both describe their personas the same way."""
    return build_profiles(
        X,
        labels,
        conf,
        list(seg.features_),
        identity,
        seg.min_persona_size_,
        model,
        str(catalog.get("as_of")),
        str(catalog.get("lake_fingerprint")),
        rule_depth=cfg.rule_depth,
        seed=cfg.random_state,
        display=display_names(catalog),
        rule_sample=cfg.rule_sample,
    )


def lifecycle_stages(X: pd.DataFrame, labels: np.ndarray) -> np.ndarray:
    """Lifecycle stage per row; the profiled rows are "repeat" whatever the table says."""
    stage = np.full(len(X), "repeat", dtype=object)
    rest = labels < 0
    if rest.any():
        stage[rest] = derive_lifecycle(X.loc[rest])
    return stage.astype(str)


def previous_publication(previous_dir: str | Path | None) -> runs.Run | None:
    """The previous publication, when there is a complete one to match identities with."""
    if previous_dir is None:
        return None
    p = Path(previous_dir)
    if not runs.is_run(p) or not (p / runs.ASSIGNMENTS).exists():
        return None
    return runs.load_run(p)
