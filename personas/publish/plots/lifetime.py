"""How well the lifetime-value model forecast held-out months: deciles and the tracking curve."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from personas.publish.plots.style import AVERAGE_COLOUR, empty, esc, layout

_EPOCH = date(1970, 1, 1)


def lifetime_fit(clv: Mapping[str, Any] | None) -> go.Figure:
    """Predicted vs actual holdout purchases by decile, and cumulative repeat purchases."""
    sel = (clv or {}).get("selection") or {}
    chosen = next((c for c in sel.get("candidates", []) if c.get("chosen")), None)
    track = sel.get("tracking")
    if not chosen or not track:
        return empty("No lifetime-value model was validated on a holdout period.")
    name = esc(str(chosen["model"]))
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=[
            "Holdout repeat purchases by decile of the forecast",
            "Cumulative repeat purchases (calibration, then holdout)",
        ],
        horizontal_spacing=0.1,
    )
    dec = chosen["deciles"]
    x = [f"D{d['decile']}" for d in dec]
    for key, label, colour in (("actual", "Actual", "#1F2937"), ("predicted", name, "#4C8CBF")):
        fig.add_trace(
            go.Bar(
                x=x,
                y=[d[key] for d in dec],
                name=label,
                marker={"color": colour},
                legendgroup=key,
                hovertemplate="%{x}: %{y:,.0f}<extra>%{fullData.name}</extra>",
            ),
            row=1,
            col=1,
        )
    days = [(_EPOCH + timedelta(days=int(d))).isoformat() for d in track["day"]]
    for key, label, dash in (("actual", "Actual", "solid"), ("predicted", name, "dash")):
        fig.add_trace(
            go.Scatter(
                x=days,
                y=track[key],
                mode="lines",
                name=label,
                legendgroup=key,
                showlegend=False,
                line={"color": "#1F2937" if key == "actual" else "#4C8CBF", "dash": dash},
                hovertemplate="%{x}: %{y:,.0f}<extra>%{fullData.name}</extra>",
            ),
            row=1,
            col=2,
        )
    cal = (_EPOCH + timedelta(days=int(track["calibration_end"]))).isoformat()
    fig.add_shape(
        type="line",
        x0=cal,
        x1=cal,
        yref="y2 domain",
        y0=0,
        y1=1,
        xref="x2",
        line={"color": AVERAGE_COLOUR, "dash": "dot"},
    )
    fig.update_layout(barmode="group")
    return layout(fig, 380, margin={"l": 56, "r": 10, "t": 40, "b": 40})
