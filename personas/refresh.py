"""One refresh of the personas: ASSIGN with the published model, or REFIT on evidence.

Marketing builds campaigns on persona ids, so a scheduled refresh keeps its model until the
evidence says the customer base changed (docs/drift.md). :func:`refresh_run` scores today's
customers with the published model, measures drift, decides by :class:`Policy`, then either

* **assign**: keeps the model, persona ids, names and actions; recomputes profiles, KPIs,
  migration and audiences for today's customers (no model selection, no new map); or
* **refit**: runs today's full discovery (:func:`personas.discover.fit_personas`), which keeps
  identities through the matching, and saves a new reference sample for later drift.

Either way the run folder gets ``drift.json`` with the mode, the reason and the figures.

With ``engine="spark"`` (``features.engine: spark`` in the config) the published model scores
every customer on Spark's executors (:func:`personas.assign_spark.score_spark`, the same
``assign`` code per batch); the placements (two numbers a customer) come back to the driver,
where drift, profiles, likely personas and KPIs are computed as with the local engine. A refit
fits on a sample on the driver either way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from personas import runs
from personas.config import SegmentationConfig
from personas.drift import Drift, Policy, measure, reference_sample
from personas.features.build import load_activity, load_catalog, load_features
from personas.ids import among
from personas.profile import identity as ident
from personas.profile.profiles import dumps
from personas.publish.audiences import with_lifetime
from personas.segment.likely import place_with
from personas.segment.segmenter import NOT_PROFILED
from personas.threads import with_model_threads


@dataclass
class RefreshResult:
    run_dir: Path
    mode: str
    reason: str
    drift: dict[str, Any]
    drifted: bool
    seconds: float


def decide(
    policy: Policy,
    has_model: bool,
    age_days: int | None,
    drift: Drift | None,
) -> tuple[str, str, list[str]]:
    """(mode, reason, reasons over threshold): the refresh policy as one pure function."""
    if not has_model:
        return "refit", "refit: no published model", []
    over = drift.over(policy.thresholds) if drift is not None else []
    changed = []
    if drift is not None and drift.added_features:
        changed.append("new " + ", ".join(drift.added_features))
    if drift is not None and drift.missing_features:
        changed.append("gone " + ", ".join(drift.missing_features))
    why: list[str] = []
    if policy.mode == "refit":
        why.append("asked (--mode refit)")
    if changed:
        why.append("feature set changed (" + "; ".join(changed) + ")")
    if age_days is not None and age_days >= policy.refit_every:
        why.append(f"model {age_days} days old >= refit_every {policy.refit_every}")
    why += over
    if policy.mode == "assign":
        if changed and drift is not None and drift.missing_features:
            return "refit", "refit: " + "; ".join(why) + " (assign impossible)", over
        note = f"; would refit: {'; '.join(why)}" if why else ""
        return "assign", f"assign: asked (--mode assign){note}", over
    if why:
        return "refit", "refit: " + "; ".join(why), over
    age = f"model {age_days} days old" if age_days is not None else "model age unknown"
    return "assign", f"assign: no drift, {age}", over


@with_model_threads
def refresh_run(
    features_path: str | Path,
    runs_root: str | Path,
    published_dir: str | Path | None,
    policy: Policy | None = None,
    config: SegmentationConfig | None = None,
    progress: Any = None,
    engine: str = "local",
    spark_master: str | None = None,
) -> RefreshResult:
    """Decide, then assign or refit, and write ``runs_root/<run_id>/`` (status "discovered").

    ``engine`` scores today's customers with the published model here ("local") or on Spark
    ("spark", at ``spark_master``; see the module)."""
    if engine not in ("local", "spark"):
        from personas.errors import ConfigError

        raise ConfigError(f"refresh engine {engine!r}: expected 'local' or 'spark'")
    from personas.discover import fit_personas, previous_publication

    t0 = time.perf_counter()
    policy = policy or Policy()
    cfg = config or SegmentationConfig()
    features_path = Path(features_path)
    X = load_features(features_path)
    catalog = load_catalog(features_path)
    activity = load_activity(features_path)
    previous = previous_publication(runs.published_run(published_dir) if published_dir else None)
    as_of = str(catalog.get("as_of"))
    run_dir = runs.create_run(
        runs_root,
        features=str(features_path),
        as_of=catalog.get("as_of"),
        data_fingerprint=catalog.get("lake_fingerprint"),
    )
    try:
        drift, scored, age, model_info = None, None, None, {}
        if previous is not None and (previous.path / runs.MODEL).exists():
            model_info = _model_info(previous)
            scored = _score(X, previous, features_path if engine == "spark" else None, spark_master)
            age = _days(model_info.get("model_as_of"), as_of)
            drift = _drift(X, previous, scored, model_info, age or 0)
        mode, reason, over = decide(policy, scored is not None, age, drift)
        if mode == "assign":
            out = _assign_output(X, catalog, previous, scored, cfg, activity)
            runs.write_run(run_dir, out)
            model_from = previous.path
            info = dict(model_info)
        else:
            out = fit_personas(X, catalog, cfg, previous, progress, activity)
            runs.write_run(run_dir, out)
            model_from = None
            conf = out.model.confidence_
            info = {
                "model_run": run_dir.name,
                "model_as_of": as_of,
                "confidence_p05": _p05(conf),
            }
        record = {
            "mode": mode,
            "reason": reason,
            "over_threshold": over,
            "thresholds": vars(policy.thresholds),
            "refit_every": policy.refit_every,
            "model_age_days": age if mode == "assign" else 0,
            "scored_on": engine if scored is not None else None,
            "drift": drift.to_json() if drift is not None else None,
            **info,
        }
        ref = reference_sample(X, cfg.random_state) if mode == "refit" else None
        runs.write_refresh(run_dir, record, reference=ref, model_from=model_from)
    except BaseException as e:
        runs.set_status(run_dir, "failed", error=f"{type(e).__name__}: {e}")
        raise
    runs.set_status(run_dir, "discovered", mode=mode, reason=reason, **info)
    return RefreshResult(
        run_dir, mode, reason, record, bool(over) or mode == "refit", time.perf_counter() - t0
    )


# ---- helpers ----------------------------------------------------------------------------------
def _model_info(previous: runs.Run) -> dict[str, Any]:
    """Which run fitted the published model, its as-of date and confidence 5th percentile."""
    d = previous.drift
    if d.get("model_run"):
        keys = ("model_run", "model_as_of", "confidence_p05")
        return {k: d.get(k) for k in keys}
    # a publication made before refresh modes: it fitted its own model
    conf = previous.assignments["confidence"].to_numpy(dtype=float)
    return {
        "model_run": previous.run_id,
        "model_as_of": previous.profiles.get("as_of"),
        "confidence_p05": _p05(conf),
    }


def _score(
    X: pd.DataFrame,
    previous: runs.Run,
    on_spark: Path | None = None,
    spark_master: str | None = None,
) -> tuple[Any, np.ndarray, np.ndarray] | None:
    """(model, labels, confidence) of today's customers under the published model; scored on
    Spark's executors from the features file ``on_spark`` when given."""
    seg = previous.model()
    if [c for c in seg.features_ if c not in X.columns]:
        return (seg, None, None)
    if on_spark is None:
        labels, conf = seg.assign(X)
        return (seg, labels, conf)
    from personas.assign_spark import score_spark

    got = score_spark(on_spark, seg, spark_master).reindex(X.index.astype(str))
    if got["label"].isna().any():  # only if the file changed while it was read
        from personas.errors import PersonasError

        raise PersonasError(
            f"{on_spark}: Spark scored {got['label'].notna().sum()} of its {len(X)} customers "
            "(was the features file rewritten meanwhile?); run the refresh again"
        )
    return (seg, got["label"].to_numpy(dtype=np.int64), got["confidence"].to_numpy(dtype=float))


def _drift(
    X: pd.DataFrame, previous: runs.Run, scored: tuple, info: dict[str, Any], age_days: int
) -> Drift:
    seg, labels, conf = scored
    ref = previous.reference
    if ref is None:  # no sample kept: the previous publication's own customers stand in
        ids = previous.assignments["customer_id"].astype(str)
        ref = X.loc[among(X.index, ids)]
    by_index = {p["index"]: p["id"] for p in previous.profiles["personas"]}
    shares: dict[str, float] = {}
    if labels is not None:
        vals, counts = np.unique(labels[labels >= 0], return_counts=True)
        shares = {
            by_index.get(int(v), f"#{v}"): float(c) / len(X)
            for v, c in zip(vals, counts, strict=True)
        }
    prev_shares = {p["id"]: float(p["share"]) for p in previous.profiles["personas"]}
    model_dir = previous.path.parent / str(info.get("model_run"))
    ids_file = model_dir / runs.ASSIGNMENTS
    model_customers = (
        pd.Index(pd.read_parquet(ids_file, columns=["customer_id"])["customer_id"])
        if ids_file.exists()
        else None
    )
    d = measure(
        X,
        ref,
        list(seg.features_),
        conf if conf is not None else np.array([]),
        info.get("confidence_p05"),
        shares,
        prev_shares,
        model_customers,
        age_days,
    )
    return d


def _assign_output(
    X: pd.DataFrame,
    catalog: dict[str, Any],
    previous: runs.Run,
    scored: tuple,
    cfg: SegmentationConfig,
    activity: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> runs.RunOutput:
    """An assign run: the published model's personas, ids, names and actions, today's figures.

    Today's prospects get likely personas from the model run's likely-persona classifier (its
    held-out figures are from its fit) and the KPIs are counted on today's assignments; a
    block that cannot be made today is left out rather than copied from the last publication.
    """
    from personas.discover import lifecycle_stages, profile_personas, run_metrics

    t0 = time.perf_counter()
    seg, labels, conf = scored
    prev_personas = {p["index"]: p for p in previous.profiles["personas"]}
    ks = sorted(int(k) for k in np.unique(labels) if k >= 0)
    top = max((_id_num(p["id"]) for p in prev_personas.values()), default=0)
    ids, names = {}, {}
    for k in ks:
        if k in prev_personas:
            ids[k], names[k] = prev_personas[k]["id"], prev_personas[k]["name"]
        else:  # a persona of the model that was empty at the last publication
            top += 1
            ids[k] = f"P{top}"
    identity = ident.Identity(
        ids,
        names,
        matched=[{"id": ids[k], "jaccard": 0.0, "kept": "assign"} for k in ks if k in names],
        new=[ids[k] for k in ks if k not in names],
        vanished=[p["id"] for i, p in prev_personas.items() if i not in ks],
        previous_run=previous.run_id,
    )
    model = dict(previous.profiles["model"])
    profiles, assignments = profile_personas(X, labels, conf, seg, identity, model, catalog, cfg)
    kept_actions = {p["id"]: p.get("actions") for p in prev_personas.values()}
    for p in profiles["personas"]:
        if kept_actions.get(p["id"]) is not None:
            p["actions"] = kept_actions[p["id"]]
    a = previous.assignments
    prev_assign = pd.Series(a["persona_id"].to_numpy(), index=a["customer_id"].astype(str))
    pid = pd.Series(assignments["persona_id"].to_numpy(), index=assignments["customer_id"])
    migration = ident.migration_matrix(pid, prev_assign)
    for m in identity.matched:  # the kept persona's overlap with its last publication
        a_ids, b_ids = (
            set(prev_assign.index[prev_assign == m["id"]]),
            set(pid.index[pid == m["id"]]),
        )
        m["jaccard"] = round(len(a_ids & b_ids) / max(len(a_ids | b_ids), 1), 4)
    likely_clf = previous.likely_model() if cfg.likely_personas else None
    likely_block = None
    if likely_clf is not None:
        names = {p["id"]: p["name"] for p in profiles["personas"]}
        assignments, likely_block = place_with(
            likely_clf, X, assignments, lifecycle_stages(X, labels), names
        )
    assignments = with_lifetime(assignments, X)  # as discovery writes them
    pmap = _relabelled_map(previous.map, assignments)
    metrics = dict(previous.metrics)
    metrics.update(
        run_metrics(X, labels, profiles, assignments, catalog, likely_block, activity, seg, t0)
    )
    return runs.RunOutput(
        profiles_json=dumps(profiles),
        assignments=assignments,
        candidates=seg.candidates_,
        identity=identity.to_json(),
        map=pmap,
        metrics=metrics,
        model=None,
        migration=migration,
    )


def _relabelled_map(prev_map: pd.DataFrame | None, assignments: pd.DataFrame) -> pd.DataFrame:
    """The model's map with today's persona of each customer still there (no new projection).

    Projecting customers again would cost a UMAP fit for a picture; the map shows the model's
    sample, which an assign run keeps.
    """
    cols = ["customer_id", "x", "y", "persona_id"]
    if prev_map is None or prev_map.empty:
        return pd.DataFrame({c: pd.Series(dtype="float32" if c in "xy" else str) for c in cols})
    now = assignments.set_index(assignments["customer_id"].astype(str))["persona_id"]
    m = prev_map[among(prev_map["customer_id"], now.index)].copy()
    m["persona_id"] = now.loc[m["customer_id"].astype(str)].to_numpy()
    groups = {gid for gid, _ in NOT_PROFILED.values()}
    return m[~m["persona_id"].isin(groups)].reset_index(drop=True)[cols]


def _id_num(pid: str) -> int:
    digits = "".join(ch for ch in str(pid) if ch.isdigit())
    return int(digits) if digits else 0


def _p05(conf: np.ndarray) -> float | None:
    c = np.asarray(conf, dtype=float)
    c = c[np.isfinite(c)]
    return round(float(np.percentile(c, 5)), 6) if len(c) else None


def _days(start: str | None, end: str | None) -> int | None:
    try:
        return (date.fromisoformat(str(end)) - date.fromisoformat(str(start))).days
    except ValueError:
        return None
