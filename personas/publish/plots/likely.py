"""Calibration of the likely-persona models: stated probability against held-out accuracy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go

from personas.publish.plots.style import AVERAGE_COLOUR, empty, layout

_COLOURS = {"prospect": "#4C8CBF", "one_time": "#D98C3F"}
_NAMES = {"prospect": "Prospects' signals", "one_time": "New customers' signals"}


def likely_calibration(block: Mapping[str, Any] | None) -> go.Figure:
    """Reliability curve per stage: mean top probability vs accuracy in each probability bin."""
    stages = (block or {}).get("stages") or {}
    if not any(ev.get("reliability") for ev in stages.values()):
        return empty("No likely-persona model was checked on held-out customers.")
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="Perfect calibration",
            line={"color": AVERAGE_COLOUR, "dash": "dot"},
            hoverinfo="skip",
        )
    )
    for stage, ev in stages.items():
        curve = ev.get("reliability") or []
        if not curve:
            continue
        fig.add_trace(
            go.Scatter(
                x=[c["mean_probability"] for c in curve],
                y=[c["accuracy"] for c in curve],
                customdata=[c["customers"] for c in curve],
                mode="lines+markers",
                name=_NAMES.get(stage, stage),
                line={"color": _COLOURS.get(stage, "#555555")},
                hovertemplate="stated %{x:.0%}, right %{y:.0%} of %{customdata:,} customers"
                "<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_layout(
        xaxis={"title": {"text": "Stated probability of the likely persona"}, "range": [0, 1]},
        yaxis={"title": {"text": "Share placed right (held-out)"}, "range": [0, 1]},
    )
    return layout(fig, 380)
