"""Discover personas from a features file and write a run folder.

``runs/<run_id>/`` receives: ``model.skops`` (the fitted segmenter, loadable without running
code), ``assignments.parquet``, ``profiles.json``, ``metrics.json`` (candidate table, selection,
stability, rule fidelity), ``identity.json`` and ``migration.parquet`` (against the previous
publication), ``map.parquet`` (UMAP sample) and ``run.json``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from personas.config import SegmentationConfig
from personas.features.build import load_features
from personas.features.catalog import display_names
from personas.profile import identity as ident
from personas.profile.profiles import build_profiles, dumps
from personas.segment.embed import persona_map
from personas.segment.segmenter import PersonaSegmenter

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]


@dataclass
class DiscoverResult:
    run_dir: Path
    k: int
    algorithm: str
    stability: float
    fidelity: float
    seconds: float


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


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
    cfg = config or SegmentationConfig()
    features_path = Path(features_path)
    X = load_features(features_path)
    catalog = _catalog(features_path)
    run_id = run_id or new_run_id()
    run_dir = Path(runs_root) / run_id
    if run_dir.exists():
        raise FileExistsError(f"run folder {run_dir} exists already; pick another run id")
    run_dir.mkdir(parents=True)
    _write_json(
        run_dir / "run.json",
        {
            "run_id": run_id,
            "status": "running",
            "started_at": _now(),
            "features": str(features_path),
            "as_of": catalog.get("as_of"),
            "data_fingerprint": catalog.get("lake_fingerprint"),
        },
    )
    try:
        seg = PersonaSegmenter(**cfg.segmenter_kwargs()).fit(X, progress=progress)
        labels = seg.labels_
        current = pd.Series(labels, index=X.index.astype(str))
        previous = _previous(previous_dir)
        if previous is not None:
            prev_assign, prev_names, prev_run = previous
            identity = ident.match(current, prev_assign, prev_names, prev_run)
        else:
            identity = ident.first_ids(labels)
        chosen = seg.candidates_[seg.candidates_["chosen"]].iloc[0].to_dict()
        model = {
            "algorithm": seg.algorithm_,
            "k": int(seg.k_),
            "stability": seg.stability_,
            "silhouette": chosen.get("silhouette"),
            "selection_rule": _RULE,
            "features": list(seg.features_),
            "dropped_features": seg.dropped_features_,
            "merged_small_clusters": {str(k): v for k, v in seg.merged_.items()},
            "sample_size": int(min(cfg.sample_size, seg.n_profiled_)),
            "random_state": cfg.random_state,
            "candidates": seg.candidates_.replace({np.nan: None}).to_dict(orient="records"),
        }
        profiles, assignments = build_profiles(
            X,
            labels,
            seg.confidence_,
            list(seg.features_),
            identity,
            seg.min_persona_size_,
            model,
            str(catalog.get("as_of")),
            str(catalog.get("lake_fingerprint")),
            rule_depth=cfg.rule_depth,
            seed=cfg.random_state,
            display=display_names(catalog),
        )
        (run_dir / "profiles.json").write_text(dumps(profiles), encoding="utf-8")
        assignments.to_parquet(run_dir / "assignments.parquet", index=False)
        seg.candidates_.to_csv(run_dir / "candidates.csv", index=False)
        _write_json(run_dir / "identity.json", identity.to_json())
        if previous is not None:
            pid = pd.Series(assignments["persona_id"].to_numpy(), index=assignments["customer_id"])
            ident.migration_matrix(pid, previous[0]).to_parquet(
                run_dir / "migration.parquet", index=False
            )
        if progress:
            progress("map", 0, 1)
        prof_mask = labels >= 0
        Z = np.zeros((len(X), 2))
        if prof_mask.any():
            Z = np.zeros((len(X), len(seg.features_)))
            Z[prof_mask] = seg.transform(X.loc[prof_mask])
        persona_map(
            X.index,
            Z,
            labels,
            assignments["persona_id"].to_numpy(),
            cap=cfg.map_sample,
            seed=cfg.random_state,
        ).to_parquet(run_dir / "map.parquet", index=False)
        save_model(seg, run_dir / "model.skops")
        metrics = {
            "model": {k: v for k, v in model.items() if k != "candidates"},
            "candidates": model["candidates"],
            "rules": profiles["rules"],
            "customers": len(X),
            "profiled": int(prof_mask.sum()),
            "persona_sizes": {p["id"]: p["size"] for p in profiles["personas"]},
            "seconds": round(time.perf_counter() - t0, 2),
        }
        _write_json(run_dir / "metrics.json", metrics)
    except BaseException as e:
        _update_run(run_dir, status="failed", error=f"{type(e).__name__}: {e}")
        raise
    _update_run(run_dir, status="discovered")
    return DiscoverResult(
        run_dir,
        int(seg.k_),
        seg.algorithm_,
        float(seg.stability_),
        float(profiles["rules"]["fidelity"]),
        time.perf_counter() - t0,
    )


_RULE = (
    "keep candidates with bootstrap stability >= min_stability (all if none) and no "
    "persona below the minimum size; take the highest silhouette; among those within "
    "a relative tolerance of it (default 2%) prefer fewer personas, then higher stability"
)

TRUSTED = [
    "personas.segment.segmenter.PersonaSegmenter",
    "personas.segment.selection.Fitted",
    "personas.segment.preprocess.GroupWeights",
    "personas.segment.preprocess.signed_log1p",
    "personas.segment.preprocess.soft_clip",
]


def save_model(seg: PersonaSegmenter, path: Path) -> None:
    """Persist with skops: loading it back cannot execute arbitrary code."""
    import copy

    import skops.io as sio

    plain = copy.copy(seg)  # skops stores arrays and dicts, not DataFrames
    plain.candidates_ = {c: seg.candidates_[c].tolist() for c in seg.candidates_.columns}
    sio.dump(plain, path)


def load_model(path: str | Path) -> PersonaSegmenter:
    """Load a segmenter saved by :func:`save_model`, trusting only known types."""
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    unknown = [
        t
        for t in untrusted
        if t not in TRUSTED and not t.startswith(("sklearn.", "numpy.", "builtins.", "scipy."))
    ]
    if unknown:
        raise ValueError(f"{path}: refuses to load unexpected types {unknown}")
    seg = sio.load(path, trusted=untrusted)
    seg.candidates_ = pd.DataFrame(seg.candidates_)
    return seg


def _previous(previous_dir: str | Path | None) -> tuple[pd.Series, dict[str, str], str] | None:
    if previous_dir is None:
        return None
    p = Path(previous_dir)
    a, prof = p / "assignments.parquet", p / "profiles.json"
    if not a.exists() or not prof.exists():
        return None
    df = pd.read_parquet(a)
    names = {x["id"]: x["name"] for x in json.loads(prof.read_text())["personas"]}
    run = (
        json.loads((p / "run.json").read_text()).get("run_id")
        if (p / "run.json").exists()
        else p.name
    )
    return pd.Series(df["persona_id"].to_numpy(), index=df["customer_id"].astype(str)), names, run


def _catalog(features_path: Path) -> dict:
    p = (
        features_path.parent / "catalog.json"
        if features_path.is_file()
        else features_path / "catalog.json"
    )
    return json.loads(p.read_text()) if p.exists() else {}


def _update_run(run_dir: Path, **fields: object) -> None:
    p = run_dir / "run.json"
    d = json.loads(p.read_text())
    d.update(fields)
    d["updated_at"] = _now()
    _write_json(p, d)


def _write_json(path: Path, obj: object) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=_default), encoding="utf-8")
    tmp.replace(path)


def _default(o: object) -> object:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return None if not np.isfinite(o) else float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    return str(o)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
