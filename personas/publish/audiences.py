"""Audience files: who is in each persona, as CSV and Parquet for marketing tools.

One file pair per persona **and** per published not-profiled group (e.g. ``NEW`` "New
customers (one purchase)"): those groups are the audiences of onboarding and first-purchase
campaigns, published only when they reach the minimum persona size, like personas. Rows are
ordered by decreasing confidence, so "the most typical 1,000" is the top of the file.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from personas.profile.profiles import slugify

AUDIENCE_COLUMNS = ["customer_id", "persona_id", "persona_name", "confidence"]


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
    df = assignments[AUDIENCE_COLUMNS].copy()
    df["customer_id"] = df["customer_id"].astype(str)
    paths = []
    for gid, _name, slug in audience_groups(profiles):
        sub = df[df["persona_id"] == gid].sort_values(
            ["confidence", "customer_id"], ascending=[False, True], na_position="last"
        )
        sub = sub.reset_index(drop=True)
        csv_path, pq_path = out / f"{slug}.csv", out / f"{slug}.parquet"
        sub.to_csv(
            csv_path, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n", encoding="utf-8"
        )
        sub.to_parquet(pq_path, index=False)
        paths += [csv_path, pq_path]
    return paths
