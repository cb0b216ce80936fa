"""How far to trust the personas: model selection evidence and rule fidelity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from personas.publish.plots.style import (
    AVERAGE_COLOUR,
    empty,
    esc,
    label_px,
    layout,
    ordered,
    persona_colour,
)


# ---- model quality -------------------------------------------------------------------------------
def model_selection(profiles: Mapping[str, Any]) -> go.Figure:
    """Silhouette and bootstrap stability by number of personas, per algorithm; chosen starred."""
    cands = pd.DataFrame(profiles["model"].get("candidates", []))
    if cands.empty or "k" not in cands:
        return empty("No model-selection candidates recorded.")
    metrics = [m for m in ("silhouette", "stability") if m in cands and cands[m].notna().any()]
    if not metrics:
        return empty("No model-selection metrics recorded.")
    titles = {
        "silhouette": "Silhouette (separation, higher is better)",
        "stability": "Bootstrap stability (higher is better)",
    }
    fig = make_subplots(
        rows=1,
        cols=len(metrics),
        subplot_titles=[titles[m] for m in metrics],
        horizontal_spacing=0.1,
    )
    algos = sorted(cands["algorithm"].astype(str).unique())
    chosen_algo = str(profiles["model"].get("algorithm"))
    others = iter(("#9CA3AF", "#7DB9B6", "#C9A3C0", "#D8C27A", "#A8B4C8"))
    algo_col = {a: "#1F2937" if a == chosen_algo else next(others, "#BBBBBB") for a in algos}
    for j, m in enumerate(metrics, start=1):
        for a in algos:
            sub = cands[cands["algorithm"].astype(str) == a].sort_values("k")
            fig.add_trace(
                go.Scatter(
                    x=sub["k"],
                    y=sub[m],
                    mode="lines+markers",
                    name=esc(a),
                    legendgroup=a,
                    showlegend=j == 1,
                    line={"color": algo_col[a], "width": 2},
                    marker={"size": 7},
                    hovertemplate=(
                        "<b>%{fullData.name}</b>, %{x} personas<br>"
                        + m
                        + ": %{y:.3f}<extra></extra>"
                    ),
                ),
                row=1,
                col=j,
            )
        chosen = cands[cands["chosen"].astype(bool)]
        if not chosen.empty:
            fig.add_trace(
                go.Scatter(
                    x=chosen["k"],
                    y=chosen[m],
                    mode="markers",
                    name="chosen model",
                    legendgroup="chosen",
                    showlegend=j == 1,
                    marker={
                        "symbol": "star",
                        "size": 18,
                        "color": "#E69F00",
                        "line": {"color": "#1F2937", "width": 1},
                    },
                    hovertemplate="<b>chosen</b>: %{x} personas<br>"
                    + m
                    + ": %{y:.3f}<extra></extra>",
                ),
                row=1,
                col=j,
            )
        fig.update_xaxes(title_text="Number of personas (k)", dtick=1, row=1, col=j)
    fig.update_annotations(font={"size": 13})
    return layout(
        fig,
        400,
        legend={"orientation": "h", "y": -0.22, "x": 0},
        margin={"l": 50, "r": 10, "t": 40, "b": 100},
    )


def rule_fidelity(profiles: Mapping[str, Any]) -> go.Figure:
    """How often the short rules put a customer in the same persona as the model, per persona."""
    personas = ordered(profiles)[::-1]
    if not personas:
        return empty("No persona in this run.")
    vals = [p["rules"].get("fidelity") or 0.0 for p in personas]
    fig = go.Figure(
        go.Bar(
            orientation="h",
            y=[esc(p["name"]) for p in personas],
            x=vals,
            marker={"color": [persona_colour(p["id"]) for p in personas]},
            text=[f"{v:.0%}" for v in vals],
            textposition="auto",
            hovertemplate="<b>%{y}</b><br>rules agree with the model for %{x:.0%}<extra></extra>",
        )
    )
    overall = profiles["rules"].get("fidelity")
    if overall is not None:
        fig.add_vline(x=overall, line={"color": AVERAGE_COLOUR, "dash": "dash", "width": 1.5})
        fig.add_annotation(
            text=f"overall {overall:.0%}",
            x=overall,
            y=1.0,
            yref="paper",
            showarrow=False,
            yanchor="bottom",
            font={"size": 11, "color": AVERAGE_COLOUR},
        )
    fig.update_xaxes(tickformat=".0%", range=[0, 1.0])
    return layout(
        fig,
        120 + 36 * len(personas),
        showlegend=False,
        bargap=0.25,
        margin={"l": label_px(fig.data[0].y), "r": 10, "t": 30, "b": 30},
    )
