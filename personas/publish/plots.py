"""Figures of the persona report: each function takes plain data and returns a ``go.Figure``.

The figures are built here and serialised by :mod:`personas.publish.report`, which embeds plotly.js
once for the whole page. Three rules hold for every figure:

* **One colour per persona id**, everywhere and across runs (``P3`` is the same colour in the
  map, the bars, the Sankey and the trend), so a reader learns the colours once.
* **Names, never indices**: axes and legends show persona names; numbers use the feature
  catalogue's formats (``12%``, ``1,234``) so the report agrees with the cards.
* **Text from the data is escaped**: plotly.js renders a subset of HTML inside labels (``<a
  href>``, ``<b>``) and decodes entities, so category or persona names are passed through
  :func:`esc` (``<`` becomes ``&lt;``, which plotly shows as a literal ``<``). Data text is
  never put inside a ``hovertemplate`` (whose ``%{...}`` would be interpreted) but into
  ``customdata``/``text`` or trace names.

Only the customer map uses WebGL (``Scattergl``): browsers allow a page 8-16 WebGL contexts,
so every other trace is SVG. Figures carry an empty template: plotly's default template adds
~10 kB of JSON to every figure and its fonts and colours are not ours.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from personas.features.catalog import GROUPS, lookup

# Colour-blind-aware qualitative palette (Okabe-Ito extended with Tableau tones): persona
# ``P<n>`` gets PALETTE[(n - 1) % len]. Groups that are not personas are greys.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#8C6D31",
    "#7B4EA3",
    "#2CA6A4",
    "#B5485D",
    "#5E8C31",
    "#3E4A89",
)
GROUP_COLOURS = {"NEW": "#8A9099", "PROSPECT": "#B4BAC2", "RETURNS": "#6B7280"}
OTHER_COLOUR = "#C9CDD2"
AVERAGE_COLOUR = "#4B5563"
# Categories and channels get their own muted palette so they are not mistaken for personas.
MIX_PALETTE = (
    "#4E79A7",
    "#F28E2B",
    "#59A14F",
    "#B07AA1",
    "#EDC948",
    "#76B7B2",
    "#FF9DA7",
    "#9C755F",
    "#BAB0AC",
    "#A0CBE8",
    "#FFBE7D",
    "#8CD17D",
    "#D4A6C8",
    "#F1CE63",
    "#86BCB6",
    "#E15759",
)
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
MAP_CAP = 20_000
Z_CLIP = 2.5
RADAR_FEATURES = (
    "frequency",
    "monetary",
    "avg_order_value",
    "recency_days",
    "tenure_days",
    "return_rate",
    "discount_share",
    "category_diversity",
    "email_open_rate",
    "sessions_90d",
    "csat_mean",
    "clv_12m",
)
RADAR_MAX_AXES = 10
VALUE_METRICS = ("clv_12m", "churn_risk", "nps", "csat_mean")
_SAFE_FMT = re.compile(r"^\{:[-+ ,._0-9a-zA-Z%]*\}$")


# ---- text and numbers ---------------------------------------------------------------------
def esc(text: object) -> str:
    """Escape text for a plotly label: plotly decodes ``&lt;``/``&gt;``/``&amp;`` on display."""
    return html.escape(str(text), quote=False)


def fmt(feature: str, value: float | None, fmt_spec: str | None = None) -> str:
    """Format a value the way the feature catalogue does (``12%``, ``1,234``, ``+0.25``).

    ``fmt_spec`` (the format stored in profiles.json) is only used for features the catalogue
    does not know, and only when it is a plain format spec: a stored ``{0.__class__}`` must not
    be able to reach attributes.
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    try:
        return lookup(feature).format(value)
    except KeyError:
        pass
    if fmt_spec and _SAFE_FMT.match(fmt_spec):
        try:
            return fmt_spec.format(value)
        except (ValueError, TypeError):
            pass
    return f"{value:,.2f}"


def persona_colour(pid: str) -> str:
    """The colour of a persona or group id; stable across runs because it keys on the id."""
    m = re.fullmatch(r"P(\d+)", str(pid))
    if m:
        return PALETTE[(int(m.group(1)) - 1) % len(PALETTE)]
    return GROUP_COLOURS.get(str(pid), OTHER_COLOUR)


def colours(profiles: Mapping[str, Any]) -> dict[str, str]:
    """Colour of every persona and group of a run, by id."""
    ids = [p["id"] for p in profiles["personas"]] + [g["id"] for g in profiles["groups"]]
    return {i: persona_colour(i) for i in ids}


def names(profiles: Mapping[str, Any]) -> dict[str, str]:
    """Display name of every persona and group of a run, by id."""
    out = {p["id"]: p["name"] for p in profiles["personas"]}
    out.update({g["id"]: g["name"] for g in profiles["groups"]})
    return out


def zscores(profiles: Mapping[str, Any], features: Sequence[str]) -> pd.DataFrame:
    """Persona mean minus population mean in population standard deviations.

    Rows are persona ids, columns features; a feature with no spread gives NaN, not infinity.
    """
    rows = {}
    for p in profiles["personas"]:
        row = {}
        for f in features:
            st = profiles["features"].get(f, {})
            mean, std = st.get("mean"), st.get("std")
            v = p["feature_means"].get(f)
            row[f] = (v - mean) / std if None not in (v, mean, std) and std > 0 else np.nan
        rows[p["id"]] = row
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(features))


# ---- layout ----------------------------------------------------------------------------------
def _layout(fig: go.Figure, height: int, automargin: bool = False, **kw: Any) -> go.Figure:
    """Shared look: our font, white background, tight margins, no plotly template.

    Axis ``automargin`` is off unless asked for: it makes plotly lay a figure out twice (40%
    of its drawing time here), so charts with name labels set their margin from the labels
    (:func:`_label_px`) instead.
    """
    opts: dict[str, Any] = {
        "margin": {"l": 10, "r": 10, "t": 30, "b": 10},
        "legend": {"bgcolor": "rgba(255,255,255,0.8)"},
        "font": {"family": FONT, "size": 13, "color": "#1F2937"},
    }
    opts.update(kw)
    fig.update_layout(
        template=go.layout.Template(),
        height=height,
        paper_bgcolor="#FFFFFF",
        plot_bgcolor="#FFFFFF",
        hoverlabel={
            "font": {"family": FONT, "size": 13},
            "bgcolor": "#FFFFFF",
            "bordercolor": "#9CA3AF",
        },
        **opts,
    )
    fig.update_xaxes(
        automargin=automargin, gridcolor="#E5E7EB", zerolinecolor="#D1D5DB", linecolor="#D1D5DB"
    )
    fig.update_yaxes(
        automargin=automargin, gridcolor="#E5E7EB", zerolinecolor="#D1D5DB", linecolor="#D1D5DB"
    )
    return fig


def _empty(message: str, height: int = 220) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(
        text=esc(message),
        showarrow=False,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        font={"size": 15, "color": "#6B7280"},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, height)


def _ordered(profiles: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Personas from the largest to the smallest (the order of every per-persona chart)."""
    return sorted(profiles["personas"], key=lambda p: (-p["size"], p["id"]))


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
    for p in _ordered(profiles):
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
        return _empty("No customers to map in this run.")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x", scaleratio=1)
    return _layout(
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
    rows = [(p["id"], p["name"], p["size"], p["share"]) for p in _ordered(profiles)]
    rows += [
        (g["id"], g["name"], g["size"], g["share"])
        for g in profiles["groups"]
        if g.get("published") and g.get("size")
    ]
    if not rows:
        return _empty("No persona in this run.")
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
    return _layout(
        fig,
        60 + 40 * len(rows),
        showlegend=False,
        bargap=0.25,
        margin={"l": _label_px(fig.data[0].y), "r": 40, "t": 10, "b": 10},
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
    personas = _ordered(profiles)
    if not feats or not personas:
        return _empty("No features to compare.")
    z = zscores(profiles, feats).loc[[p["id"] for p in personas]]
    fstats = profiles["features"]
    ylab = _unique([esc(fstats.get(f, {}).get("label", f)) for f in feats])
    xlab = _unique([_wrap(esc(p["name"]), 18) for p in personas])
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
    return _layout(
        fig,
        40 + 16 * lines + 22 * len(feats),
        margin={"l": _label_px(ylab, 12), "r": 10, "t": 20 + 16 * lines, "b": 10},
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
        return _empty("Too few features for a radar chart.")
    fstats = profiles["features"]
    z = zscores(profiles, feats).loc[persona_id].to_numpy(dtype=float)
    r = np.clip(np.nan_to_num(z, nan=0.0), -Z_CLIP, Z_CLIP).round(3)
    theta = _unique([_wrap(esc(fstats[f]["label"])) for f in feats])
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
            fillcolor=_rgba(colour, 0.25),
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
    return _layout(
        fig,
        440,
        showlegend=True,
        margin={"l": 90, "r": 90, "t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.08, "x": 0.5, "xanchor": "center"},
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
    personas = _ordered(profiles)[::-1]
    if not metrics or not personas:
        return _empty("No value or satisfaction data in this run (purchases only).")
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
        title = _metric_title(m)
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
    return _layout(
        fig,
        150 + 40 * len(personas),
        showlegend=False,
        bargap=0.25,
        margin={"l": _label_px(ylab), "r": 10, "t": 70, "b": 10},
    )


def nps_mix(profiles: Mapping[str, Any]) -> go.Figure | None:
    """Promoters, passives and detractors per persona; ``None`` when there is no NPS data."""
    personas = [p for p in _ordered(profiles) if p.get("nps_classes")][::-1]
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
    return _layout(
        fig,
        150 + 36 * len(personas),
        barmode="stack",
        bargap=0.25,
        margin={"l": _label_px(ylab), "r": 10, "t": 40, "b": 30},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0, "traceorder": "normal"},
    )


def mix(profiles: Mapping[str, Any], kind: str) -> go.Figure:
    """Category (``kind="category"``) or channel mix: 100% stacked bars per persona.

    Includes an "All customers" bar from the population means, so a persona's tilt is visible.
    """
    key, unit = {"category": ("category_mix", "spend"), "channel": ("channel_mix", "orders")}[kind]
    personas = _ordered(profiles)
    cats = sorted({c for p in personas for c in p.get(key, {})})
    if not cats:
        return _empty(f"No {kind} data in this run.")
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
    return _layout(
        fig,
        150 + 36 * len(rows),
        barmode="stack",
        bargap=0.25,
        margin={"l": _label_px(ylab), "r": 10, "t": 60, "b": 30},
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


# ---- change over time ---------------------------------------------------------------------------
def migration_sankey(
    migration: pd.DataFrame,
    profiles: Mapping[str, Any],
    previous_names: Mapping[str, str] | None = None,
    previous_label: str = "previous run",
) -> go.Figure:
    """Where the previous run's customers went: previous group (left) to this run's (right).

    Nodes smaller than the minimum persona size are folded into "Other small groups": a flow
    chart must not reveal the size of a group the profiles do not publish.
    """
    min_size = int(profiles["min_persona_size"])
    cur_names = names(profiles)
    prev_names = dict(previous_names or {})
    df = migration.copy()
    df["customers"] = df["customers"].astype(int)
    prev_tot = df.groupby("previous")["customers"].sum()
    cur_tot = df.groupby("current")["customers"].sum()
    small = "Other small groups"

    def node(side: str, gid: str, totals: pd.Series) -> str:
        if gid == "(absent)":
            return "Not a customer then" if side == "prev" else "Not in this run"
        if totals.get(gid, 0) < min_size:
            return small
        nm = (prev_names.get(gid) or cur_names.get(gid)) if side == "prev" else cur_names.get(gid)
        return f"{gid} {nm}" if nm else gid

    df["src"] = [node("prev", g, prev_tot) for g in df["previous"].astype(str)]
    df["dst"] = [node("cur", g, cur_tot) for g in df["current"].astype(str)]
    gid_of = {}
    for side, col, raw in (("prev", "src", "previous"), ("cur", "dst", "current")):
        for lab, g in zip(df[col], df[raw].astype(str), strict=True):
            gid_of[(side, lab)] = g
    flows = df.groupby(["src", "dst"], sort=False)["customers"].sum().reset_index()
    flows = flows[flows["customers"] > 0]
    if flows.empty:
        return _empty("No customers in common with the previous run.")
    left = sorted(flows["src"].unique(), key=lambda s: _node_key(gid_of.get(("prev", s), s)))
    right = sorted(flows["dst"].unique(), key=lambda s: _node_key(gid_of.get(("cur", s), s)))
    labels = left + right
    index = {("prev", s): i for i, s in enumerate(left)}
    index.update({("cur", s): len(left) + i for i, s in enumerate(right)})
    node_col = [_node_colour(gid_of.get(("prev", s), ""), s) for s in left] + [
        _node_colour(gid_of.get(("cur", s), ""), s) for s in right
    ]
    link_col = [_rgba(node_col[index[("prev", s)]], 0.35) for s in flows["src"]]
    # explicit positions keep both columns in persona order (plotly would reorder by size)
    ys = _stack_positions(
        [flows.loc[flows["src"] == s, "customers"].sum() for s in left]
    ) + _stack_positions([flows.loc[flows["dst"] == s, "customers"].sum() for s in right])
    xs = [0.001] * len(left) + [0.999] * len(right)
    fig = go.Figure(
        go.Sankey(
            arrangement="snap",
            node={
                "label": [esc(s) for s in labels],
                "color": node_col,
                "pad": 14,
                "x": xs,
                "y": ys,
                "thickness": 16,
                "line": {"color": "#FFFFFF", "width": 0.5},
                "hovertemplate": "<b>%{label}</b><br>%{value:,} customers<extra></extra>",
            },
            link={
                "source": [index[("prev", s)] for s in flows["src"]],
                "target": [index[("cur", s)] for s in flows["dst"]],
                "value": flows["customers"].tolist(),
                "color": link_col,
                "hovertemplate": (
                    "%{source.label} → %{target.label}<br>%{value:,} customers<extra></extra>"
                ),
            },
        )
    )
    fig.add_annotation(
        text=esc(previous_label),
        x=0,
        y=1.06,
        xref="paper",
        yref="paper",
        showarrow=False,
        xanchor="left",
        font={"color": "#6B7280"},
    )
    fig.add_annotation(
        text="this run",
        x=1,
        y=1.06,
        xref="paper",
        yref="paper",
        showarrow=False,
        xanchor="right",
        font={"color": "#6B7280"},
    )
    return _layout(
        fig,
        max(360, 34 * max(len(left), len(right)) + 120),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )


def size_trend(history: Sequence[Mapping[str, Any]], profiles: Mapping[str, Any]) -> go.Figure:
    """Share of customers per persona over the published runs (oldest first).

    Lines follow persona *ids*, which identity matching keeps stable across runs; a persona's
    current name labels its line.
    """
    if not history:
        return _empty("No run history yet.")
    xs = _run_labels(history)
    current = names(profiles)
    series: dict[str, dict[str, Any]] = {}
    for x, h in zip(xs, history, strict=True):
        for p in h.get("personas", []):
            s = series.setdefault(
                p["id"], {"x": [], "share": [], "size": [], "name": p.get("name", p["id"])}
            )
            s["x"].append(x)
            s["share"].append(p.get("share"))
            s["size"].append(p.get("size"))
            s["name"] = p.get("name", s["name"])
    fig = go.Figure()
    for pid in sorted(series, key=_node_key):
        s = series[pid]
        nm = current.get(pid, s["name"])
        fig.add_trace(
            go.Scatter(
                x=s["x"],
                y=s["share"],
                mode="lines+markers",
                name=esc(f"{nm}"),
                line={"color": persona_colour(pid), "width": 2},
                marker={"size": 8},
                customdata=[f"{v:,}" if v is not None else "n/a" for v in s["size"]],
                hovertemplate=(
                    "<b>%{fullData.name}</b><br>%{x}<br>%{y:.1%} of customers "
                    "(%{customdata})<extra></extra>"
                ),
            )
        )
    fig.update_yaxes(tickformat=".0%", title_text="Share of customers", rangemode="tozero")
    fig.update_xaxes(type="category", title_text="Run (as-of date)")
    return _layout(
        fig,
        380,
        automargin=True,
        hovermode="closest",
        legend={"orientation": "v", "bgcolor": "rgba(255,255,255,0.8)"},
    )


# ---- model quality -------------------------------------------------------------------------------
def model_selection(profiles: Mapping[str, Any]) -> go.Figure:
    """Silhouette and bootstrap stability by number of personas, per algorithm; chosen starred."""
    cands = pd.DataFrame(profiles["model"].get("candidates", []))
    if cands.empty or "k" not in cands:
        return _empty("No model-selection candidates recorded.")
    metrics = [m for m in ("silhouette", "stability") if m in cands and cands[m].notna().any()]
    if not metrics:
        return _empty("No model-selection metrics recorded.")
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
    return _layout(
        fig,
        400,
        legend={"orientation": "h", "y": -0.22, "x": 0},
        margin={"l": 50, "r": 10, "t": 40, "b": 100},
    )


def rule_fidelity(profiles: Mapping[str, Any]) -> go.Figure:
    """How often the short rules put a customer in the same persona as the model, per persona."""
    personas = _ordered(profiles)[::-1]
    if not personas:
        return _empty("No persona in this run.")
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
    return _layout(
        fig,
        120 + 36 * len(personas),
        showlegend=False,
        bargap=0.25,
        margin={"l": _label_px(fig.data[0].y), "r": 10, "t": 30, "b": 30},
    )


# ---- helpers -----------------------------------------------------------------------------------
def _metric_title(m: str) -> str:
    if m == "nps":
        return "NPS"
    try:
        return lookup(m).label
    except KeyError:
        return m


def _label_px(labels: Iterable[str], font_px: int = 13) -> int:
    """Left margin that fits the longest (escaped) label at our font size, capped."""
    longest = max((len(html.unescape(str(x))) for x in labels), default=0)
    return int(min(380, 16 + 0.56 * font_px * longest))


def _wrap(label: str, width: int = 16) -> str:
    """Break a long (already escaped) label over lines so polar axes do not clip it."""
    words, lines, cur = label.split(" "), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    lines.append(cur)
    return "<br>".join(lines)


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _unique(labels: Iterable[str]) -> list[str]:
    """Make axis labels unique (plotly merges equal category labels into one)."""
    seen: dict[str, int] = {}
    out = []
    for s in labels:
        n = seen.get(s, 0)
        seen[s] = n + 1
        out.append(s if n == 0 else f"{s} ({n + 1})")
    return out


def _node_key(gid: str) -> tuple[int, int, str]:
    m = re.fullmatch(r"P(\d+)", str(gid))
    if m:
        return (0, int(m.group(1)), "")
    return (1, 0, str(gid))


def _stack_positions(sizes: Sequence[float], gap: float = 0.02) -> list[float]:
    """Centres (0..1, top to bottom) of nodes stacked in order with a small gap between."""
    total = float(sum(sizes)) or 1.0
    free = max(0.0, 1.0 - gap * (len(sizes) - 1))
    out, y = [], 0.0
    for v in sizes:
        h = free * v / total
        out.append(min(0.999, max(0.001, y + h / 2)))
        y += h + gap
    return out


def _node_colour(gid: str, label: str) -> str:
    if gid == "(absent)" or label == "Other small groups":
        return OTHER_COLOUR
    return persona_colour(gid)


def _run_labels(history: Sequence[Mapping[str, Any]]) -> list[str]:
    """x labels of the trend: the as-of date, with the run id when two runs share a date."""
    dates = [str(h.get("as_of") or h.get("run_id")) for h in history]
    out = []
    for d, h in zip(dates, history, strict=True):
        out.append(d if dates.count(d) == 1 else f"{d} ({h.get('run_id')})")
    return out
