"""What the personas are worth and how they buy: value and risk, NPS, category and channel mix."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from personas.publish.plots.style import (
    AVERAGE_COLOUR,
    MIX_PALETTE,
    OTHER_COLOUR,
    VALUE_METRICS,
    empty,
    esc,
    fmt,
    label_px,
    layout,
    metric_title,
    ordered,
    persona_colour,
)


# ---- value and risk, mix ------------------------------------------------------------------------
def value_metrics(profiles: Mapping[str, Any]) -> list[str]:
    """Which of CLV, churn risk, NPS and CSAT this run has (the rest are left out, not zeroed)."""
    pop = profiles["population"]["metrics"]
    out = []
    for m in VALUE_METRICS:
        if m == "nps":
            if any(p.get("nps") is not None for p in profiles["personas"]):
                out.append(m)
        elif m in pop and any(m in p["metrics"] for p in profiles["personas"]):
            out.append(m)
    return out


def value_risk(profiles: Mapping[str, Any]) -> go.Figure:
    """CLV, churn risk, NPS and CSAT per persona (each only when the data has it).

    Bars are persona means (NPS: % promoters minus % detractors among those who answered);
    the dashed line is the average customer.
    """
    metrics = value_metrics(profiles)
    personas = ordered(profiles)[::-1]
    if not metrics or not personas:
        return empty("No value or satisfaction data in this run (purchases only).")
    pop = profiles["population"]
    ylab = [esc(p["name"]) for p in personas]
    columns = []
    for m in metrics:
        if m == "nps":
            vals = [p.get("nps") for p in personas]
            text = ["n/a" if v is None else f"{v:+.0f}" for v in vals]
            avg = pop.get("nps")
            avg_text = None if avg is None else f"{avg:+.0f}"
        else:
            vals = [p["metrics"].get(m, {}).get("persona") for p in personas]
            text = [fmt(m, v) for v in vals]
            avg = pop["metrics"].get(m)
            avg_text = fmt(m, avg)
        title = metric_title(m)
        columns.append(
            (m, title, vals, text, avg, title if avg is None else f"{title}<br>average {avg_text}")
        )
    fig = make_subplots(
        rows=1,
        cols=len(metrics),
        shared_yaxes=True,
        subplot_titles=[c[5] for c in columns],
        horizontal_spacing=0.05,
    )
    for j, (_m, title, vals, text, avg, _) in enumerate(columns, start=1):
        xs = [0 if v is None else v for v in vals]
        fig.add_trace(
            go.Bar(
                orientation="h",
                y=ylab,
                x=xs,
                text=text,
                textposition="outside",
                textangle=0,
                cliponaxis=False,
                customdata=text,
                name=title,
                marker={"color": [persona_colour(p["id"]) for p in personas]},
                hovertemplate="<b>%{y}</b><br>" + title + ": %{customdata}<extra></extra>",
            ),
            row=1,
            col=j,
        )
        if avg is not None:
            fig.add_vline(
                x=avg, line={"color": AVERAGE_COLOUR, "dash": "dash", "width": 1.5}, row=1, col=j
            )
        lo, hi = min([0.0, *xs]), max([0.0, *xs, avg or 0.0])
        pad = 0.28 * (hi - lo or 1.0)
        fig.update_xaxes(
            showticklabels=False,
            zeroline=True,
            row=1,
            col=j,
            range=[lo - (pad if lo < 0 else 0), hi + pad],
        )
    fig.update_annotations(font={"size": 13})
    return layout(
        fig,
        150 + 40 * len(personas),
        showlegend=False,
        bargap=0.25,
        margin={"l": label_px(ylab), "r": 10, "t": 70, "b": 10},
    )


def nps_mix(profiles: Mapping[str, Any]) -> go.Figure | None:
    """Promoters, passives and detractors per persona; ``None`` when there is no NPS data."""
    personas = [p for p in ordered(profiles) if p.get("nps_classes")][::-1]
    if not personas:
        return None
    classes = (
        ("promoter", "Promoters (9-10)", "#1A9850"),
        ("passive", "Passives (7-8)", "#BDBDBD"),
        ("detractor", "Detractors (0-6)", "#D73027"),
    )
    fig = go.Figure()
    ylab = [esc(p["name"]) for p in personas]
    for key, lab, col in classes:
        vals = [p["nps_classes"].get(key, 0.0) for p in personas]
        fig.add_trace(
            go.Bar(
                orientation="h",
                y=ylab,
                x=vals,
                name=lab,
                marker={"color": col},
                text=[f"{v:.0%}" if v >= 0.06 else "" for v in vals],
                textposition="inside",
                customdata=[f"{v:.0%}" for v in vals],
                hovertemplate="<b>%{y}</b><br>%{fullData.name}: %{customdata}<extra></extra>",
            )
        )
    fig.update_xaxes(tickformat=".0%", range=[0, 1])
    return layout(
        fig,
        150 + 36 * len(personas),
        barmode="stack",
        bargap=0.25,
        margin={"l": label_px(ylab), "r": 10, "t": 40, "b": 30},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0, "traceorder": "normal"},
    )


def mix(profiles: Mapping[str, Any], kind: str) -> go.Figure:
    """Category (``kind="category"``) or channel mix: 100% stacked bars per persona.

    Includes an "All customers" bar from the population means, so a persona's tilt is visible.
    """
    key, unit = {"category": ("category_mix", "spend"), "channel": ("channel_mix", "orders")}[kind]
    personas = ordered(profiles)
    cats = sorted({c for p in personas for c in p.get(key, {})})
    if not cats:
        return empty(f"No {kind} data in this run.")
    pop = population_mix(profiles, kind, cats)
    rows = [("All customers", pop, None)] + [(p["name"], p[key], p["id"]) for p in personas]
    rows = rows[::-1]
    ylab = [esc(r[0]) for r in rows]
    # order segments by population share so the biggest category is always first
    cats.sort(key=lambda c: -(pop.get(c) or 0))
    fig = go.Figure()
    for i, c in enumerate(cats):
        vals = [(r[1].get(c) or 0.0) for r in rows]
        fig.add_trace(
            go.Bar(
                orientation="h",
                y=ylab,
                x=vals,
                name=esc(c),
                marker={"color": MIX_PALETTE[i % len(MIX_PALETTE)]},
                text=[f"{v:.0%}" if v >= 0.07 else "" for v in vals],
                textposition="inside",
                insidetextanchor="middle",
                customdata=[f"{v:.1%}" for v in vals],
                hovertemplate=(
                    "<b>%{y}</b><br>%{fullData.name}: %{customdata} of " + unit + "<extra></extra>"
                ),
            )
        )
    other = [max(0.0, 1.0 - sum((r[1].get(c) or 0.0) for c in cats)) for r in rows]
    if max(other) > 0.005:
        fig.add_trace(
            go.Bar(
                orientation="h",
                y=ylab,
                x=other,
                name="Other",
                marker={"color": OTHER_COLOUR},
                customdata=[f"{v:.1%}" for v in other],
                hovertemplate="<b>%{y}</b><br>Other: %{customdata} of " + unit + "<extra></extra>",
            )
        )
    fig.update_xaxes(tickformat=".0%", range=[0, 1])
    return layout(
        fig,
        150 + 36 * len(rows),
        barmode="stack",
        bargap=0.25,
        margin={"l": label_px(ylab), "r": 10, "t": 60, "b": 30},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0, "traceorder": "normal"},
    )


def population_mix(profiles: Mapping[str, Any], kind: str, keys: Iterable[str]) -> dict:
    """Everyone's share per category/channel, keyed like the personas' mixes.

    Mix keys are the data's own names ("Kids' toys") while feature columns are sanitised
    (``cat_share__kids_toys``); the feature's label ("Share of spend: Kids' toys") links them.
    """
    prefix, lab = {
        "category": ("cat_share__", "Share of spend: "),
        "channel": ("chan_share__", "Share of orders: "),
    }[kind]
    by_label = {
        st.get("label", "").removeprefix(lab): st.get("mean")
        for f, st in profiles["features"].items()
        if f.startswith(prefix)
    }
    by_column = {
        f.removeprefix(prefix): st.get("mean")
        for f, st in profiles["features"].items()
        if f.startswith(prefix)
    }
    return {k: by_label.get(k, by_column.get(k)) for k in keys}
