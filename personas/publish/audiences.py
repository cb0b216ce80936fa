"""Audience files: who is in each persona, as CSV and Parquet for marketing tools.

One file pair per persona **and** per published not-profiled group (e.g. ``NEW`` "New
customers (one purchase)"): those groups are the audiences of onboarding and first-purchase
campaigns, published only when they reach the minimum persona size, like personas. Rows are
ordered by decreasing confidence, so "the most typical 1,000" is the top of the file.

Prospect audiences (:func:`write_prospect_audiences`) are the look-alikes: per persona, the
prospects and one-purchase customers whose likely persona it is, by decreasing probability,
so an automation can nurture them with that persona's journey. They are never part of the
persona's own audience or size.

Customer audiences also carry each customer's ``p_alive`` and
``expected_days_to_next_purchase`` (:data:`LIFETIME_COLUMNS`), so a journey can time its next
message: discovery copies them from the features into the assignments
(:func:`with_lifetime`).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from personas.profile.profiles import slugify

AUDIENCE_COLUMNS = [
    "customer_id",
    "persona_id",
    "persona_name",
    "confidence",
    "p_alive",
    "expected_days_to_next_purchase",
]
# The lifetime-model scores an automation times its next message by: P(still active) and,
# if active, the expected days to the next purchase (docs/features.md). Blank where the
# features have none (no usable model, a one-purchase customer, or a run made before them).
LIFETIME_COLUMNS = ("p_alive", "expected_days_to_next_purchase")


def with_lifetime(assignments: pd.DataFrame, X: pd.DataFrame) -> pd.DataFrame:
    """``assignments`` with :data:`LIFETIME_COLUMNS` taken from the features ``X``."""
    ids = assignments["customer_id"].astype(str)
    X = X.set_axis(X.index.astype(str))
    out = assignments.copy()
    for c in LIFETIME_COLUMNS:
        col = X[c].astype(float) if c in X.columns else pd.Series(np.nan, index=X.index)
        out[c] = col.reindex(ids).round(6).to_numpy()
    return out


def audience_groups(profiles: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(id, name, slug) of every audience: each persona and each published group."""
    out = [(p["id"], p["name"], p["slug"]) for p in profiles["personas"]]
    out += [
        (g["id"], g["name"], slugify(f"{g['id']}-{g['name']}"))
        for g in profiles["groups"]
        if g.get("published")
    ]
    return out


def write_audiences(
    assignments: pd.DataFrame, profiles: Mapping[str, Any], out_dir: str | Path
) -> list[Path]:
    """CSV and Parquet audience files per persona/published group; returns the paths.

    The CSV is RFC 4180 (fields with commas, quotes or line breaks are quoted, quotes
    doubled) in UTF-8, which marketing-automation imports expect; customer ids are written
    exactly as in the data so they match the CRM.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df = assignments.reindex(columns=AUDIENCE_COLUMNS).copy()
    df["customer_id"] = df["customer_id"].astype(str)
    paths = []
    for gid, _name, slug in audience_groups(profiles):
        sub = df[df["persona_id"] == gid].sort_values(
            ["confidence", "customer_id"], ascending=[False, True], na_position="last"
        )
        paths += write_pair(sub, out, slug)
    return paths


def write_pair(df: pd.DataFrame, out: Path, slug: str) -> list[Path]:
    """``<slug>.csv`` (RFC 4180, UTF-8) and ``<slug>.parquet`` of one audience."""
    df = df.reset_index(drop=True)
    csv_path, pq_path = out / f"{slug}.csv", out / f"{slug}.parquet"
    df.to_csv(
        csv_path, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n", encoding="utf-8"
    )
    df.to_parquet(pq_path, index=False)
    return [csv_path, pq_path]


PROSPECT_COLUMNS = [
    "customer_id",
    "stage",
    "likely_persona",
    "likely_persona_name",
    "likely_probability",
]
_STAGE = {"PROSPECT": "prospect", "NEW": "one_time"}


def write_prospect_audiences(
    assignments: pd.DataFrame, profiles: Mapping[str, Any], out_dir: str | Path
) -> tuple[list[Path], dict[str, int]]:
    """CSV and Parquet of each persona's likely prospects and new customers.

    A persona's file is written only when it holds at least the minimum persona size; the
    others are returned as ``{persona id: customers withheld}`` so the report can say so.
    Undecided customers are in no file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if "likely_persona" not in assignments.columns:
        return [], {}
    min_size = int(profiles["min_persona_size"])
    df = assignments[assignments["likely_persona"].notna()].copy()
    df["stage"] = df["persona_id"].map(_STAGE).fillna("other")
    df["customer_id"] = df["customer_id"].astype(str)
    paths: list[Path] = []
    withheld: dict[str, int] = {}
    for p in profiles["personas"]:
        sub = df[df["likely_persona"] == p["id"]][PROSPECT_COLUMNS]
        if len(sub) < min_size:
            if len(sub):
                withheld[p["id"]] = len(sub)
            continue
        sub = sub.sort_values(["likely_probability", "customer_id"], ascending=[False, True])
        paths += write_pair(sub, out, p["slug"])
    return paths, withheld
