"""Monthly retention per persona (and all customers) before the as-of date."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go

from personas.publish.plots.style import AVERAGE_COLOUR, empty, esc, layout, persona_colour


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
