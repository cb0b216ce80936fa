"""What a feature build hands back, and its ``catalog.json``: the same for every engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from personas.features.catalog import label, lookup
from personas.features.sql import Context
from personas.lake import Lake


@dataclass
class FeatureSet:
    """Where a feature build wrote its output and what it holds."""

    path: Path
    catalog_path: Path
    as_of: date
    columns: list[str]
    customers: int
    seconds: float


def catalog_json(
    ctx: Context, columns: list[str], n: int, lake: Lake, versions: dict[str, int] | None = None
) -> dict:
    feats = []
    for c in columns:
        try:
            f = lookup(c)
        except KeyError:
            if c == "lifecycle":
                feats.append(
                    {
                        "name": c,
                        "group": "profile",
                        "label": "Lifecycle stage",
                        "definition": "prospect (no purchase), one_time or repeat",
                        "unit": "class",
                        "tables": ["transactions"],
                        "segment": False,
                        "kind": "categorical",
                        "higher_is": "",
                    }
                )
            continue
        feats.append(
            {
                "name": f.name,
                "group": f.group,
                "label": f.label,
                "definition": f.definition,
                "unit": f.unit,
                "tables": list(f.tables),
                "segment": f.segment,
                "kind": f.kind,
                "higher_is": f.higher_is,
            }
        )
    basis = (
        "order lines (transactions)"
        if "transactions" in ctx.tables
        else "customer-level attributes of the customers table ("
        + ", ".join(label(f) for f in ctx.attribute_features)
        + "); the lake has no order lines"
    )
    for f in feats:
        if f["name"] in ctx.attribute_features:
            f["definition"] = "customer-level value from the source, as the mapping defines it"
            f["tables"] = ["customers"]
    return {
        "as_of": ctx.as_of.isoformat(),
        "basis": basis,
        "customers": n,
        "tables": sorted(ctx.tables),
        "lake_fingerprint": lake.fingerprint(versions),
        "lake_versions": versions if versions is not None else lake.snapshot(),
        "categories": ctx.categories,
        "channels": ctx.channels,
        "view_categories": ctx.view_categories,
        "features": feats,
    }
