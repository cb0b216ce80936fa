"""Who the personas are: the customer map, sizes, the persona-by-feature heatmap, radars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from personas.features.catalog import GROUPS
from personas.publish.plots.style import (
    AVERAGE_COLOUR,
    FONT,
    MAP_CAP,
    RADAR_FEATURES,
    RADAR_MAX_AXES,
    Z_CLIP,
    empty,
    esc,
    fmt,
    label_px,
    layout,
    names,
    ordered,
    persona_colour,
    rgba,
    unique_labels,
    wrap,
    zscores,
)


# ---- map, sizes, heatmap, radar ----------------------------------------------------------------
def sample_map(map_df: pd.DataFrame, cap: int = MAP_CAP, seed: int = 0) -> pd.DataFrame:
    """At most ``cap`` rows, stratified by persona (each keeps its share of the dots).

    Discovery already caps the map (``map_sample``); this second cap protects the report when
    a run folder was made with a larger sample, because the page size grows with every dot.
    """
    if len(map_df) <= cap:
        return map_df
    rng = np.random.default_rng(seed)
    parts = []
    for _, g in map_df.groupby("persona_id", sort=True):
        take = max(1, round(cap * len(g) / len(map_df)))
        parts.append(g.iloc[np.sort(rng.choice(len(g), min(take, len(g)), replace=False))])
    return pd.concat(parts).head(cap)


def persona_map(
    map_df: pd.DataFrame, profiles: Mapping[str, Any], cap: int = MAP_CAP, seed: int = 0
) -> go.Figure:
    """UMAP map of (a sample of) customers, one WebGL trace per persona.

    Customer ids are deliberately not embedded: the map is for seeing the shape of the
    personas, the audiences are for reaching customers.
    """
    df = sample_map(map_df, cap, seed)
    nm = names(profiles)
    fig = go.Figure()
    marker_size = 5 if len(df) <= 5_000 else 4 if len(df) <= 30_000 else 3
    for p in ordered(profiles):
        sub = df[df["persona_id"] == p["id"]]
        if sub.empty:
            continue
        fig.add_trace(
            go.Scattergl(
                x=sub["x"].to_numpy(np.float32),
                y=sub["y"].to_numpy(np.float32),
                mode="markers",
                name=esc(nm[p["id"]]),
                marker={"color": persona_colour(p["id"]), "size": marker_size, "opacity": 0.65},
                hovertemplate="<b>%{fullData.name}</b><extra></extra>",
            )
        )
    if not fig.data:
        return empty("No customers to map in this run.")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x", scaleratio=1)
    return layout(
        fig,
        560,
        hovermode="closest",
        dragmode="pan",
        margin={"l": 5, "r": 5, "t": 5, "b": 5},
        legend={
            "itemsizing": "constant",
            "orientation": "h",
            "y": -0.02,
            "yanchor": "top",
            "x": 0,
            "font": {"size": 12},
        },
    )


def sizes(profiles: Mapping[str, Any]) -> go.Figure:
    """Customers per persona, plus the published groups that are not personas (grey)."""
    rows = [(p["id"], p["name"], p["size"], p["share"]) for p in ordered(profiles)]
    rows += [
        (g["id"], g["name"], g["size"], g["share"])
        for g in profiles["groups"]
        if g.get("published") and g.get("size")
    ]
    if not rows:
        return empty("No persona in this run.")
    rows = rows[::-1]  # plotly draws the first category at the bottom
    fig = go.Figure(
        go.Bar(
            orientation="h",
            y=[esc(r[1]) for r in rows],
            x=[r[2] for r in rows],
            marker={"color": [persona_colour(r[0]) for r in rows]},
            text=[f"{r[3]:.0%} · {r[2]:,}" for r in rows],
            textposition="auto",
            customdata=[f"{r[3]:.1%}" for r in rows],
            hovertemplate="<b>%{y}</b><br>%{x:,} customers (%{customdata})<extra></extra>",
        )
    )
    fig.update_xaxes(visible=False)
    fig.update_traces(cliponaxis=False, textangle=0)
    return layout(
        fig,
        60 + 40 * len(rows),
        showlegend=False,
        bargap=0.25,
        margin={"l": label_px(fig.data[0].y), "r": 40, "t": 10, "b": 10},
    )


def heatmap_features(profiles: Mapping[str, Any]) -> list[str]:
    """Features of the heatmap: those used for segmentation, then key outcomes, by group."""
    feats = profiles["features"]
    used = [f for f in profiles["model"].get("features", []) if f in feats]
    extra = [
        f
        for f in ("clv_12m", "churn_risk", "nps_latest", "csat_mean")
        if f in feats and f not in used
    ]
    order = {g: i for i, g in enumerate(GROUPS)}  # the catalogue's group order
    chosen = used + extra
    pos = {f: i for i, f in enumerate(chosen)}
    return sorted(chosen, key=lambda f: (order.get(feats[f]["group"], 99), pos[f]))


def heatmap(profiles: Mapping[str, Any], features: Sequence[str] | None = None) -> go.Figure:
    """Feature x persona: how far each persona's mean is from everyone's, in standard deviations.

    Features are rows (their labels read horizontally, grouped as in the catalogue) and
    personas are columns. Colour is clipped at +/-2.5 sd so one extreme feature does not wash
    out the rest; the hover gives the real values in the catalogue's format.
    """
    feats = list(features) if features is not None else heatmap_features(profiles)
    personas = ordered(profiles)
    if not feats or not personas:
        return empty("No features to compare.")
    z = zscores(profiles, feats).loc[[p["id"] for p in personas]]
    fstats = profiles["features"]
    ylab = unique_labels([esc(fstats.get(f, {}).get("label", f)) for f in feats])
    xlab = unique_labels([wrap(esc(p["name"]), 18) for p in personas])
    custom = []
    for f in feats:
        st = fstats.get(f, {})
        row = []
        for p in personas:
            zz = z.loc[p["id"], f]
            row.append(
                [
                    fmt(f, p["feature_means"].get(f), st.get("format")),
                    fmt(f, st.get("mean"), st.get("format")),
                    "n/a" if not np.isfinite(zz) else f"{zz:+.1f}",
                    esc(p["name"]),
                ]
            )
        custom.append(row)
    zc = np.clip(z.to_numpy(dtype=float).T, -Z_CLIP, Z_CLIP)
    fig = go.Figure(
        go.Heatmap(
            z=np.where(np.isfinite(zc), np.round(zc, 3), None).tolist(),
            x=xlab,
            y=ylab,
            customdata=custom,
            zmid=0,
            zmin=-Z_CLIP,
            zmax=Z_CLIP,
            colorscale=[
                [0, "#2166AC"],
                [0.3, "#92C5DE"],
                [0.5, "#F7F7F7"],
                [0.7, "#F4A582"],
                [1, "#B2182B"],
            ],
            xgap=2,
            ygap=1,
            colorbar={
                "title": {"text": "vs average<br>(std. dev.)"},
                "tickvals": [-2, -1, 0, 1, 2],
                "ticktext": ["-2", "-1", "average", "+1", "+2"],
                "thickness": 12,
            },
            hovertemplate=(
                "<b>%{customdata[3]}</b><br>%{y}: %{customdata[0]}<br>average: %{customdata[1]}"
                "<br>%{customdata[2]} std. dev. from average<extra></extra>"
            ),
        )
    )
    lines = max(x.count("<br>") + 1 for x in xlab)
    fig.update_xaxes(side="top", tickangle=0, showgrid=False)
    fig.update_yaxes(autorange="reversed", showgrid=False)
    return layout(
        fig,
        40 + 16 * lines + 22 * len(feats),
        margin={"l": label_px(ylab, 12), "r": 10, "t": 20 + 16 * lines, "b": 10},
        font={"family": FONT, "size": 12, "color": "#1F2937"},
    )


def radar_features(profiles: Mapping[str, Any]) -> list[str]:
    """The radar axes: the same for every persona of a run, only features that vary."""
    feats = profiles["features"]
    out = [f for f in RADAR_FEATURES if f in feats and (feats[f].get("std") or 0) > 0]
    return out[:RADAR_MAX_AXES]


def radar(
    profiles: Mapping[str, Any], persona_id: str, features: Sequence[str] | None = None
) -> go.Figure:
    """One persona against the average customer on the same axes as every other persona.

    The radius is the clipped z-score (average = the dashed ring), so axes with different
    units share one scale; the hover gives the real values.
    """
    feats = list(features) if features is not None else radar_features(profiles)
    p = next((q for q in profiles["personas"] if q["id"] == persona_id), None)
    if p is None:
        raise KeyError(f"no persona {persona_id!r} in this run")
    if len(feats) < 3:
        return empty("Too few features for a radar chart.")
    fstats = profiles["features"]
    z = zscores(profiles, feats).loc[persona_id].to_numpy(dtype=float)
    r = np.clip(np.nan_to_num(z, nan=0.0), -Z_CLIP, Z_CLIP).round(3)
    theta = unique_labels([wrap(esc(fstats[f]["label"])) for f in feats])
    custom = [
        [
            fmt(f, p["feature_means"].get(f), fstats[f].get("format")),
            fmt(f, fstats[f].get("mean"), fstats[f].get("format")),
        ]
        for f in feats
    ]
    colour = persona_colour(persona_id)
    fig = go.Figure()
    fig.add_trace(
        go.Scatterpolar(
            r=[0.0] * (len(feats) + 1),
            theta=[*theta, theta[0]],
            mode="lines",
            name="Average customer",
            line={"color": AVERAGE_COLOUR, "dash": "dash", "width": 1.5},
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatterpolar(
            r=[*r.tolist(), float(r[0])],
            theta=[*theta, theta[0]],
            customdata=[*custom, custom[0]],
            mode="lines+markers",
            fill="toself",
            name=esc(p["name"]),
            line={"color": colour, "width": 2},
            marker={"size": 7, "color": colour},
            fillcolor=rgba(colour, 0.25),
            hovertemplate=(
                "<b>%{theta}</b><br>%{fullData.name}: %{customdata[0]}"
                "<br>average: %{customdata[1]}<extra></extra>"
            ),
        )
    )
    fig.update_layout(
        polar={
            "radialaxis": {
                "range": [-Z_CLIP, Z_CLIP],
                "tickvals": [-2, 0, 2],
                "ticktext": ["below", "average", "above"],
                "angle": 90,
                "tickangle": 90,
                "gridcolor": "#E5E7EB",
                "linecolor": "#D1D5DB",
                "tickfont": {"size": 10, "color": "#6B7280"},
            },
            "angularaxis": {
                "direction": "clockwise",
                "rotation": 90,
                "gridcolor": "#E5E7EB",
                "linecolor": "#D1D5DB",
                "tickfont": {"size": 11},
            },
            "bgcolor": "#FFFFFF",
        }
    )
    return layout(
        fig,
        440,
        showlegend=True,
        margin={"l": 90, "r": 90, "t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.08, "x": 0.5, "xanchor": "center"},
    )
