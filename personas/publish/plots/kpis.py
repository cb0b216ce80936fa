"""KPI charts: monthly retention per persona before the as-of date (:func:`kpi_trend`) and
each KPI per persona across the published runs (:func:`kpi_runs`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from personas.publish.plots.change import node_key, run_labels
from personas.publish.plots.style import (
    AVERAGE_COLOUR,
    empty,
    esc,
    layout,
    names,
    persona_colour,
)


def kpi_trend(block: Mapping[str, Any] | None, profiles: Mapping[str, Any]) -> go.Figure:
    """Retention rate per month, one line per persona and one for all customers."""
    monthly = [r for r in (block or {}).get("monthly", []) if r.get("retention_rate") is not None]
    if not monthly:
        return empty("No month with a previous month to measure retention against.")
    names = {p["id"]: p["name"] for p in profiles["personas"]}
    names.update({g["id"]: g["name"] for g in profiles.get("groups", [])})
    fig = go.Figure()
    groups = list(dict.fromkeys(r["group"] for r in monthly))
    for g in groups:
        rows = [r for r in monthly if r["group"] == g]
        colour = AVERAGE_COLOUR if g == "ALL" else persona_colour(g)
        fig.add_trace(
            go.Scatter(
                x=[r["period"] for r in rows],
                y=[r["retention_rate"] for r in rows],
                mode="lines+markers",
                name=esc("All customers" if g == "ALL" else names.get(g, g)),
                line={"color": colour, "width": 3 if g == "ALL" else 1.5},
                hovertemplate="%{x}: %{y:.1%}<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_layout(
        yaxis={"title": {"text": "Retention (bought again the next month)"}, "tickformat": ".0%"},
        xaxis={"title": {"text": "Month"}},
    )
    return layout(fig, 380)


def kpi_runs(
    history: Sequence[Mapping[str, Any]],
    profiles: Mapping[str, Any],
    key: str,
    title: str,
    spec: str,
    min_count: int | None = None,
) -> go.Figure:
    """One KPI (``key`` of the history entries' ``kpis``) over the published runs, one line
    per persona id (and all customers), oldest run first.

    ``min_count`` makes it a count (new customers): a value below it is not drawn, so no
    published figure counts fewer customers than the minimum persona size.
    """
    xs = run_labels(history)
    current = names(profiles)
    series: dict[str, dict[str, list[Any]]] = {}
    for x, h in zip(xs, history, strict=True):
        for gid, row in (h.get("kpis") or {}).items():
            v = (row or {}).get(key)
            if v is None or (min_count is not None and v < min_count):
                continue
            s = series.setdefault(gid, {"x": [], "y": []})
            s["x"].append(x)
            s["y"].append(v)
    if not series:
        return empty(f"No published run has {title.lower()} yet.")
    fig = go.Figure()
    for gid in sorted(series, key=lambda g: (g != "ALL", node_key(g))):
        s = series[gid]
        fig.add_trace(
            go.Scatter(
                x=s["x"],
                y=s["y"],
                mode="lines+markers",
                name=esc("All customers" if gid == "ALL" else current.get(gid, gid)),
                line={
                    "color": AVERAGE_COLOUR if gid == "ALL" else persona_colour(gid),
                    "width": 3 if gid == "ALL" else 1.5,
                },
                customdata=[spec.format(v) for v in s["y"]],
                hovertemplate="%{x}: %{customdata}<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_yaxes(title_text=esc(title), rangemode="tozero", tickformat=_TICKS.get(spec))
    fig.update_xaxes(type="category", title_text="Published run (as-of date)")
    return layout(fig, 280, automargin=True, hovermode="closest")


_TICKS = {"{:.1%}": ".0%", "{:.0%}": ".0%"}
