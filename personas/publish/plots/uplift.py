"""Forest plot of a campaign test: uplift with its 95% interval per persona and message.

One figure per campaign with a control arm. Each row is a persona (or the overall row, or a
likely persona of contacted prospects and first-time buyers, labelled "Likely: ..."), each
variant a trace; the dot is the uplift of the response rate in percentage points and the
whiskers its interval. A zero line shows where "no effect" lies: a whisker that crosses it is
no tested effect. Small cells (a thin arm) are drawn as open markers in their own legend entry,
so the reader sees them flagged rather than hidden.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go

from personas.publish.plots.style import AVERAGE_COLOUR, MIX_PALETTE, esc, label_px, layout

SMALL_LABEL = "small cell (flagged: read with care)"


def forest(camp: Mapping[str, Any], response: str = "conversion") -> go.Figure:
    """The forest plot of one causal campaign of the uplift table (rows as published)."""
    rows = [r for r in camp["rows"] if r[response].get("uplift") is not None]
    labels = _labels(rows)
    order = list(dict.fromkeys(labels))  # first seen first: overall, personas, likely
    fig = go.Figure()
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    for i, v in enumerate(variants):
        colour = MIX_PALETTE[i % len(MIX_PALETTE)]
        for small in (False, True):
            pick = [
                (lab, r)
                for lab, r in zip(labels, rows, strict=True)
                if r["variant"] == v and bool(r.get("small_cell")) == small
            ]
            if not pick:
                continue
            cells = [r[response] for _, r in pick]
            fig.add_trace(
                go.Scatter(
                    x=[100 * c["uplift"] for c in cells],
                    y=[lab for lab, _ in pick],
                    mode="markers",
                    name=esc(f"{v}, {SMALL_LABEL}" if small else v),
                    legendgroup=esc(v),
                    marker={  # an open symbol is drawn in its colour: hollow, not hidden
                        "color": colour,
                        "line": {"color": colour, "width": 2},
                        "size": 10,
                        "symbol": "circle-open" if small else "circle",
                    },
                    error_x={
                        "type": "data",
                        "symmetric": False,
                        "array": [100 * (c["high"] - c["uplift"]) for c in cells],
                        "arrayminus": [100 * (c["uplift"] - c["low"]) for c in cells],
                        "color": colour,
                        "thickness": 1.5,
                    },
                    customdata=[
                        [100 * c["low"], 100 * c["high"], r["n_treatment"], r["n_control"]]
                        for c, (_, r) in zip(cells, pick, strict=True)
                    ],
                    hovertemplate="uplift %{x:+.1f} pp (95% CI %{customdata[0]:+.1f} to "
                    "%{customdata[1]:+.1f}); %{customdata[2]:,} contacted, "
                    "%{customdata[3]:,} held out<extra>%{y}</extra>",
                )
            )
    fig.add_vline(x=0, line={"color": AVERAGE_COLOUR, "width": 1.5, "dash": "dash"})
    height = 130 + 34 * max(len(order), 1)
    fig.update_layout(
        xaxis={"title": {"text": "Uplift of the response rate (percentage points, 95% CI)"}},
        yaxis={
            "categoryorder": "array",
            "categoryarray": list(reversed(order)),
            "type": "category",
        },
        showlegend=True,
    )
    return layout(
        fig,
        height,
        margin={"l": label_px(order), "r": 10, "t": 50, "b": 60},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.01, "x": 0},
    )


def forests(uplift: Mapping[str, Any] | None) -> dict[str, go.Figure]:
    """Forest plots of every causal campaign with published rows, by figure id."""
    if not uplift:
        return {}
    response = uplift.get("response", "conversion")
    return {
        figure_id(i): forest(c, response)
        for i, c in enumerate(_shown(uplift))
        if c["causal"] and c["rows"]
    }


def figure_id(index: int) -> str:
    """Element id of a campaign's forest plot (by its place in the report's order)."""
    return f"forest-{index}"


def _shown(uplift: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Campaigns in the report's order (tested first, then by name)."""
    return sorted(uplift.get("campaigns", []), key=lambda c: (not c["causal"], c["campaign"]))


def _labels(rows: list[Mapping[str, Any]]) -> list[str]:
    return [esc(r["persona_name"]) for r in rows]
