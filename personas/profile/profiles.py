"""Persona profiles: the one document every output (report, cards, JSON, audiences) is made from.

``build_profiles`` turns features + assignments into a plain dict (``profiles.json``, validated
against ``personas/schemas/profiles.schema.json``). It holds no timestamps or run ids, so the
same input and seed give byte-identical profiles. Nothing in it describes fewer customers than
the minimum persona size: small not-profiled groups are listed without figures, and category
values held by fewer customers than that are folded into "other".
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pandas as pd

from personas.features.catalog import (
    CATEGORY_PREFIX,
    CHANNEL_PREFIX,
    VALUE_DIMENSIONS,
    label,
    lookup,
)
from personas.profile.explain import (
    RULE_SAMPLE,
    GroupMoments,
    Rules,
    Trait,
    effect_scale,
    ratio_scale,
    surrogate_rules,
    traits,
)
from personas.profile.identity import Identity
from personas.profile.naming import PersonaStats, describe, make_names
from personas.profile.playbook import recommend
from personas.segment.segmenter import NOT_PROFILED

SCHEMA_VERSION = 1
# The metrics compared with the average, in the order the report and cards show them.
KEY_METRICS = (
    "monetary",
    "clv_12m",
    "frequency",
    "avg_order_value",
    "recency_days",
    "tenure_days",
    "churn_risk",
    "p_alive",
    "expected_purchases_365d",
    "return_rate",
    "discount_share",
    "nps_latest",
    "csat_mean",
    "review_mean",
    "email_open_rate",
    "email_click_rate",
    "sessions_90d",
    "cart_abandonment_rate",
    "support_contacts_365d",
    "loyalty_member",
    "coupon_redemptions",
    "campaign_response_rate",
)
HEADLINE = ("frequency", "avg_order_value", "recency_days")
CATEGORICAL = ("country", "region", "age_band", "income_band", "household", "loyalty_tier")


def build_profiles(
    X: pd.DataFrame,
    labels: np.ndarray,
    confidence: np.ndarray,
    features: list[str],
    identity: Identity,
    min_size: int,
    model: dict[str, Any],
    as_of: str,
    data_fingerprint: str,
    rule_depth: int = 4,
    seed: int = 0,
    display: dict[str, str] | None = None,
    rule_sample: int | None = RULE_SAMPLE,
) -> tuple[dict, pd.DataFrame]:
    """Profiles dict and the assignment table (customer_id, persona_id, persona_name, ...)."""
    n = len(X)
    ks = sorted(int(k) for k in np.unique(labels) if k >= 0)
    num_cols = [c for c in X.columns if _numeric(X[c]) and _known(c)]
    num = X[num_cols].apply(pd.to_numeric, errors="coerce")
    # "the average customer" everywhere (metrics, heatmap, radar, traits) is the average of the
    # customers in personas: one-time buyers and prospects have their own groups
    ref = num[labels >= 0] if (labels >= 0).any() else num
    pop_mean, pop_std, pop_median = ref.mean(), ref.std(ddof=0), ref.median()
    names_map = display or {}  # share column -> the data's category / channel name
    tr = traits(X, labels, num_cols, top=6, names=names_map)
    rules = surrogate_rules(
        X,
        labels,
        features,
        max_depth=rule_depth,
        random_state=seed,
        names=names_map,
        sample=rule_sample,
    )
    prof = labels >= 0
    raw = GroupMoments.of(num[prof], labels[prof])
    tamed = GroupMoments.of(effect_scale(num[prof]), labels[prof])
    stats = [_stats(k, labels[prof], raw, num[prof].mean(), tamed) for k in ks]
    for st in stats:
        st.names = names_map
    gen_names = make_names(stats) if not identity.names else _names_with_kept(stats, identity)
    names = {k: identity.names.get(k, gen_names[k]) for k in ks}
    personas = []
    for s in stats:
        k = s.index
        inside = labels == k
        personas.append(
            _persona(
                k,
                identity.ids[k],
                names[k],
                inside,
                n,
                X,
                num,
                pop_mean,
                pop_median,
                tr.get(k, []),
                rules,
                s,
                confidence,
                min_size,
                names_map,
            )
        )
    personas.sort(key=lambda p: _id_num(p["id"]))
    groups = []
    for lab, (gid, gname) in sorted(NOT_PROFILED.items(), reverse=True):
        size = int((labels == lab).sum())
        if size == 0:
            continue
        g = {
            "id": gid,
            "name": gname,
            "published": size >= min_size,
            "reason": "too little purchase history to profile",
        }
        if size >= min_size:
            g.update(size=size, share=_r(size / n))
        else:
            g["size_note"] = f"fewer than {min_size} customers"
        groups.append(g)
    profiles = {
        "schema_version": SCHEMA_VERSION,
        "as_of": as_of,
        "data_fingerprint": data_fingerprint,
        "min_persona_size": int(min_size),
        "population": {
            "customers": int(n),
            "profiled": int((labels >= 0).sum()),
            "reference": "customers in personas (averages and comparisons)",
            "metrics": {m: _r(pop_mean[m]) for m in KEY_METRICS if m in pop_mean},
        },
        "features": {
            c: {
                "label": label(c, names_map),
                "group": _group(c),
                "mean": _r(pop_mean[c]),
                "std": _r(pop_std[c]),
                "median": _r(pop_median[c]),
                "used_for_segmentation": c in features,
                "format": _fmt(c),
            }
            for c in num_cols
        },
        "model": model,
        "rules": {
            "fidelity": _r(rules.fidelity),
            "depth": rules.depth,
            "max_depth": rule_depth,
            "fitted_on": int(min(rule_sample or n, (labels >= 0).sum())),
        },
        "personas": personas,
        "groups": groups,
    }
    if "nps_class" in X.columns:
        profiles["population"].update(_population_nps(X["nps_class"], min_size))
    assignments = _assignments(X.index, labels, confidence, identity, names)
    return _clean(profiles), assignments


def _population_nps(classes: pd.Series, min_size: int) -> dict[str, Any]:
    """Everyone's NPS, the reference line of the per-persona NPS in the report."""
    vc = classes.dropna().astype(str).value_counts()
    if vc.sum() < min_size:
        return {}
    shares = {c: _r(v / vc.sum()) for c, v in vc.items()}
    return {
        "nps_classes": shares,
        "nps": _r(100 * (shares.get("promoter", 0) - shares.get("detractor", 0))),
    }


def _persona(
    k: int,
    pid: str,
    name: str,
    inside: np.ndarray,
    n: int,
    X: pd.DataFrame,
    num: pd.DataFrame,
    pop_mean: pd.Series,
    pop_median: pd.Series,
    tr: list[Trait],
    rules: Rules,
    s: PersonaStats,
    confidence: np.ndarray,
    min_size: int,
    names_map: dict[str, str],
) -> dict:
    size = int(inside.sum())
    sub = num[inside]
    mean, median = sub.mean(), sub.median()
    metrics = {}
    for m in KEY_METRICS:
        if m in sub.columns and np.isfinite(mean.get(m, np.nan)):
            metrics[m] = {
                "label": label(m),
                "persona": _r(mean[m]),
                "persona_median": _r(median[m]),
                "population": _r(pop_mean[m]),
                "ratio": (
                    _r(mean[m] / pop_mean[m]) if ratio_scale(m) and pop_mean[m] > 0 else None
                ),
                "format": _fmt(m),
            }
    trait_list = [
        {
            "feature": t.feature,
            "label": t.label,
            "direction": t.direction,
            "effect_size": _r(t.effect_size),
            "lift": _r(t.lift),
            "persona_value": _r(t.persona_mean),
            "population_value": _r(t.population_mean),
            "text": t.text(),
        }
        for t in tr
    ]
    headline = {}
    for h in HEADLINE:
        if h in metrics:
            headline[label(h).lower()] = lookup(h).format(metrics[h]["persona"])
    value_profile = {
        d: _r(mean[f"value_{d}"])
        for d in VALUE_DIMENSIONS
        if f"value_{d}" in mean and np.isfinite(mean[f"value_{d}"])
    }
    cat_mix = {
        names_map.get(c, c.removeprefix(CATEGORY_PREFIX)): _r(mean[c])
        for c in sub.columns
        if c.startswith(CATEGORY_PREFIX)
    }
    chan_mix = {
        names_map.get(c, c.removeprefix(CHANNEL_PREFIX)): _r(mean[c])
        for c in sub.columns
        if c.startswith(CHANNEL_PREFIX)
    }
    rule_items = rules.per_persona.get(k, [])[:3]
    persona = {
        "id": pid,
        "index": int(k),
        "name": name,
        "slug": slugify(f"{pid}-{name}"),
        "size": size,
        "share": _r(size / n),
        "description": describe(name, size / n, size, [t["text"] for t in trait_list], headline),
        "confidence": _r(float(np.nanmean(confidence[inside]))),
        "metrics": metrics,
        "feature_means": {c: _r(mean[c]) for c in sub.columns if np.isfinite(mean[c])},
        "traits": trait_list,
        "rules": {
            "fidelity": _r(rules.persona_fidelity.get(k, 0.0)),
            "items": [_clean(r) for r in rule_items],
        },
        "value_profile": value_profile,
        "category_mix": cat_mix,
        "channel_mix": chan_mix,
        "actions": recommend(s),
        "attributes": _categoricals(X[inside], min_size),
    }
    if "nps_class" in X.columns:
        vc = X.loc[inside, "nps_class"].dropna().value_counts()
        if vc.sum() >= min_size:
            persona["nps_classes"] = {str(c): _r(v / vc.sum()) for c, v in vc.items()}
            persona["nps"] = _r(
                100
                * (
                    persona["nps_classes"].get("promoter", 0)
                    - persona["nps_classes"].get("detractor", 0)
                )
            )
    return persona


def _stats(
    k: int, labels: np.ndarray, raw: GroupMoments, pop_mean: pd.Series, tamed: GroupMoments
) -> PersonaStats:
    """Effect sizes (tamed scale) and ratios of persona k versus the other profiled customers."""
    effects = tamed.cohens_d(k).to_dict()
    mean = raw.mean.loc[k]
    ratios = (mean / pop_mean.replace(0, np.nan)).to_dict()
    return PersonaStats(
        k, float((labels == k).mean()), ratios, mean.to_dict(), pop_mean.to_dict(), effects
    )


def _names_with_kept(stats: list[PersonaStats], identity: Identity) -> dict[int, str]:
    """Generate names for new personas without reusing a kept (matched) name."""
    kept = {k: v for k, v in identity.names.items()}
    fresh = [s for s in stats if s.index not in kept]
    if not fresh:
        return kept
    gen = make_names(fresh)
    used = {v.lower() for v in kept.values()}
    out = dict(kept)
    for s in fresh:
        nm = gen[s.index]
        base, j = nm, 2
        while nm.lower() in used:
            nm = f"{base} ({j})"
            j += 1
        used.add(nm.lower())
        out[s.index] = nm
    return out


def _assignments(
    index: pd.Index,
    labels: np.ndarray,
    confidence: np.ndarray,
    identity: Identity,
    names: dict[int, str],
) -> pd.DataFrame:
    pid = np.empty(len(labels), dtype=object)
    pname = np.empty(len(labels), dtype=object)
    for k, i in identity.ids.items():
        pid[labels == k] = i
        pname[labels == k] = names[k]
    for lab, (gid, gname) in NOT_PROFILED.items():
        pid[labels == lab] = gid
        pname[labels == lab] = gname
    return pd.DataFrame(
        {
            "customer_id": index.astype(str),
            "persona_id": pid.astype(str),
            "persona_name": pname.astype(str),
            "confidence": np.round(confidence.astype(float), 6),
            "profiled": labels >= 0,
        }
    )


def _categoricals(sub: pd.DataFrame, min_size: int) -> dict[str, dict[str, float]]:
    out = {}
    for c in CATEGORICAL:
        if c not in sub.columns:
            continue
        vc = sub[c].dropna().astype(str).value_counts()
        if vc.sum() < min_size:
            continue
        shown = vc[vc >= min_size].head(5)
        if shown.empty:
            continue
        d = {str(v): _r(cnt / len(sub)) for v, cnt in shown.items()}
        rest = len(sub) - int(shown.sum())
        if rest > 0:
            d["other or unknown"] = _r(rest / len(sub))
        out[c] = d
    return out


def slugify(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")[:60] or "persona"


def dumps(profiles: dict) -> str:
    """Canonical JSON text (sorted keys, fixed float rounding) so equal input gives equal bytes."""
    return json.dumps(profiles, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _known(c: str) -> bool:
    try:
        lookup(c)
        return True
    except KeyError:
        return False


def _group(c: str) -> str:
    return lookup(c).group


def _fmt(c: str) -> str:
    return lookup(c).fmt


def _id_num(pid: str) -> int:
    try:
        return int(pid.lstrip("P"))
    except ValueError:
        return 10**6


def _r(x: Any, digits: int = 6) -> Any:
    """Round to significant digits: stable bytes across runs, no float noise in the report."""
    if x is None:
        return None
    try:
        x = float(x)
    except (TypeError, ValueError):
        return x
    if not math.isfinite(x):
        return None
    if x == 0:
        return 0.0
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


def _clean(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_clean(v) for v in o]
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, float | np.floating):
        return _r(o)
    return o
