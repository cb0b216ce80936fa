"""The KPIs of the report and the persona cards: retention, observed vs modelled churn,
acquisition, loyalty, CLV, NPS and CSAT.

Reads the ``kpis`` block discovery recorded in ``metrics.json`` (definitions in
:mod:`personas.features.kpis`) and turns it into display strings: the report's table
(:func:`section`), its charts (:func:`figures`: the monthly retention, and each KPI per
persona across the published runs, from the history entries :func:`history_kpis` keeps), the
new customers per month by first channel and by (likely) persona, and a card's KPI lines
(:func:`card_rows`). Groups below the minimum persona size are not in the block at all, and a
count of new customers below it is shown as "fewer than N", never as the number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from personas.publish import plots

COLUMNS = (
    ("customers", "Customers", "{:,}"),
    ("retention_rate", "Retention", "{:.1%}"),
    ("observed_churn_rate", "Observed churn", "{:.1%}"),
    ("modelled_churn_risk", "Modelled churn risk", "{:.1%}"),
    ("new_customers", "New customers", "{:,}"),
    ("loyalty_participation", "Loyalty members", "{:.0%}"),
    ("clv_12m", "12-month CLV", "{:,.0f}"),
    ("nps_mean", "NPS (mean score)", "{:.1f}"),
    ("csat_mean", "CSAT (mean)", "{:.0%}"),  # as the catalogue formats csat_mean
)


# The KPIs followed across published runs: (key in the history entry, chart title, format).
RUN_TRENDS = (
    ("retention_rate", "Retention", "{:.1%}"),
    ("observed_churn_rate", "Observed churn", "{:.1%}"),
    ("modelled_churn_risk", "Modelled churn risk", "{:.1%}"),
    ("new_customers", "New customers", "{:,}"),
    ("clv_12m", "12-month CLV", "{:,.0f}"),
    ("loyalty_participation", "Loyalty members", "{:.0%}"),
    ("nps_mean", "NPS (mean score)", "{:.1f}"),
    ("csat_mean", "CSAT (mean)", "{:.0%}"),  # as the catalogue formats csat_mean
)
COUNTS = ("customers", "new_customers")


def section(
    block: Mapping[str, Any] | None,
    profiles: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any] | None:
    """Display-ready KPI table per persona and for all customers (None without KPIs), the
    KPI charts across ``history`` (the published runs, this one last) and the acquisition."""
    if not block or not block.get("summary"):
        return None
    names = _names(profiles)
    min_size = int(profiles["min_persona_size"])
    rows = block["summary"]
    cols = [(k, label, fmt) for k, label, fmt in COLUMNS if any(r.get(k) is not None for r in rows)]
    return {
        "period": next((r["period"] for r in rows if r.get("period")), None),
        "headers": [label for _, label, _ in cols],
        "rows": [
            {
                "name": names.get(r["group"], r["group"]),
                "cells": [
                    _cell(r.get(k), fmt, min_size if k in COUNTS else 0) for k, _, fmt in cols
                ],
                "tiers": ", ".join(
                    f"{t} {s:.0%}" for t, s in (r.get("loyalty_tiers") or {}).items()
                ),
            }
            for r in rows
        ],
        "definitions": [f"{k.replace('_', ' ')}: {v}" for k, v in block["definitions"].items()],
        "runs": len(history),
        "run_charts": [
            {"id": f"kpi-runs-{key}", "title": title}
            for key, title, _ in RUN_TRENDS
            if _in_history(history, key, min_size)
        ],
        "acquisition": [
            t
            for t in (
                _acquisition("first channel", block.get("acquisition_by_channel"), {}, min_size),
                _acquisition(
                    "persona (likely persona for prospects and one-purchase customers)",
                    block.get("acquisition_by_likely_persona"),
                    names,
                    min_size,
                ),
            )
            if t
        ],
        "min_size": min_size,
    }


def figures(
    block: Mapping[str, Any] | None,
    history: Sequence[Mapping[str, Any]],
    profiles: Mapping[str, Any],
) -> dict[str, go.Figure]:
    """The KPI figures by element id: monthly retention, and one chart per KPI over the runs."""
    if not block or not block.get("summary"):
        return {}
    min_size = int(profiles["min_persona_size"])
    figs = {"kpis": plots.kpi_trend(block, profiles)}
    for key, title, spec in RUN_TRENDS:
        if _in_history(history, key, min_size):
            figs[f"kpi-runs-{key}"] = plots.kpi_runs(
                history, profiles, key, title, spec, min_size if key in COUNTS else None
            )
    return figs


def card_rows(
    block: Mapping[str, Any] | None, persona: Mapping[str, Any], min_size: int
) -> dict[str, Any] | None:
    """A persona card's KPIs next to all customers' (None when the run has none for it).

    Never for a group below ``min_size``: such a persona has no card anyway, and the check is
    repeated here so a hand-made or old block cannot slip one through.
    """
    rows = {r["group"]: r for r in (block or {}).get("summary", [])}
    mine, everyone = rows.get(persona["id"]), rows.get("ALL", {})
    if not mine or int(mine.get("customers") or 0) < min_size or persona["size"] < min_size:
        return None
    lines = []
    for k, label, fmt in COLUMNS[1:]:
        if mine.get(k) is None:
            continue
        floor = min_size if k in COUNTS else 0
        lines.append(
            {
                "label": label,
                "persona": _cell(mine[k], fmt, floor),
                "all": _cell(everyone.get(k), fmt, floor),
            }
        )
    tiers = ", ".join(f"{t} {s:.0%}" for t, s in (mine.get("loyalty_tiers") or {}).items())
    if tiers:
        lines.append({"label": "Loyalty tiers", "persona": tiers, "all": ""})
    return {"period": mine.get("period") or "the last complete month", "rows": lines}


def history_kpis(block: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The figures a run's history entry keeps, per group, for the trend across runs."""
    if not block:
        return None
    keep = ("period", "customers", *(k for k, _, _ in RUN_TRENDS))
    return {r["group"]: {k: r.get(k) for k in keep} for r in block.get("summary", [])}


def _names(profiles: Mapping[str, Any]) -> dict[str, str]:
    names = {p["id"]: p["name"] for p in profiles["personas"]}
    names.update({g["id"]: g["name"] for g in profiles.get("groups", [])})
    # "undecided" is personas.segment.likely.UNDECIDED (not imported: it loads scikit-learn)
    return names | {"ALL": "All customers", "undecided": "Undecided", "none": "No persona"}


def _cell(v: Any, fmt: str, floor: int = 0) -> str:
    """A formatted KPI; a count below ``floor`` (the minimum persona size) is not given."""
    if v is None:
        return "–"
    if floor and v < floor:
        return f"fewer than {floor:,}"
    return fmt.format(v)


def _in_history(history: Sequence[Mapping[str, Any]], key: str, min_size: int) -> bool:
    """Some run has the KPI (a count: at least ``min_size``), so its chart has a line."""
    floor = min_size if key in COUNTS else 0
    values = [(row or {}).get(key) for h in history for row in (h.get("kpis") or {}).values()]
    return any(v is not None and v >= floor for v in values)


def _acquisition(
    by: str,
    records: Sequence[Mapping[str, Any]] | None,
    names: Mapping[str, str],
    min_size: int,
) -> dict[str, Any] | None:
    """New customers per first-purchase month (rows) and key (columns): a channel or a
    (likely) persona; counts below ``min_size`` read "fewer than N"."""
    if not records:
        return None
    months = sorted({r["first_period"] for r in records})
    keys = sorted({r["key"] for r in records}, key=lambda k: (k not in names, names.get(k, k)))
    n = {(r["first_period"], r["key"]): int(r["new_customers"]) for r in records}
    return {
        "by": by,
        "headers": [names.get(k, k) for k in keys],
        "rows": [
            {"month": m, "cells": [_cell(n.get((m, k), 0), "{:,}", min_size) for k in keys]}
            for m in months
        ],
        "total": [
            _cell(sum(v for (_, key), v in n.items() if key == k), "{:,}", min_size) for k in keys
        ],
    }
