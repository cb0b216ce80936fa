"""The report's KPI section: retention, observed vs modelled churn, acquisition, loyalty, CLV.

Reads the ``kpis`` block discovery recorded in ``metrics.json`` (definitions in
:mod:`personas.features.kpis`) and turns it into display strings; the monthly trend is drawn by
:func:`personas.publish.plots.kpi_trend`. Groups below the minimum persona size are not in
the block at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COLUMNS = (
    ("customers", "Customers", "{:,}"),
    ("retention_rate", "Retention", "{:.1%}"),
    ("observed_churn_rate", "Observed churn", "{:.1%}"),
    ("modelled_churn_risk", "Modelled churn risk", "{:.1%}"),
    ("new_customers", "New customers", "{:,}"),
    ("loyalty_participation", "Loyalty members", "{:.0%}"),
    ("clv_12m", "12-month CLV", "{:,.0f}"),
    ("nps_mean", "NPS (mean score)", "{:.1f}"),
    ("csat_mean", "CSAT (mean)", "{:.2f}"),
)


def section(block: Mapping[str, Any] | None, profiles: Mapping[str, Any]) -> dict[str, Any] | None:
    """Display-ready KPI table per persona and for all customers (None without KPIs)."""
    if not block or not block.get("summary"):
        return None
    names = {p["id"]: p["name"] for p in profiles["personas"]}
    names.update({g["id"]: g["name"] for g in profiles.get("groups", [])})
    names["ALL"] = "All customers"
    rows = block["summary"]
    cols = [(k, label, fmt) for k, label, fmt in COLUMNS if any(r.get(k) is not None for r in rows)]
    return {
        "period": next((r["period"] for r in rows if r.get("period")), None),
        "headers": [label for _, label, _ in cols],
        "rows": [
            {
                "name": names.get(r["group"], r["group"]),
                "cells": ["–" if r.get(k) is None else fmt.format(r[k]) for k, _, fmt in cols],
                "tiers": ", ".join(
                    f"{t} {s:.0%}" for t, s in (r.get("loyalty_tiers") or {}).items()
                ),
            }
            for r in rows
        ],
        "definitions": [f"{k.replace('_', ' ')}: {v}" for k, v in block["definitions"].items()],
    }


def history_kpis(block: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The figures a run's history entry keeps, per group, for the trend across runs."""
    if not block:
        return None
    keep = ("period", "retention_rate", "observed_churn_rate", "new_customers", "clv_12m")
    return {r["group"]: {k: r.get(k) for k in keep} for r in block.get("summary", [])}
