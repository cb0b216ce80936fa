"""The look shared by every figure: colours per persona id, number formats, escaping, layout.

One colour per persona id, everywhere and across runs; numbers in the feature catalogue's
formats; text from the data escaped for plotly's label HTML (see :mod:`personas.publish.plots`).
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

from personas.features.catalog import lookup

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
def layout(fig: go.Figure, height: int, automargin: bool = False, **kw: Any) -> go.Figure:
    """Shared look: our font, white background, tight margins, no plotly template.

    Axis ``automargin`` is off unless asked for: it makes plotly lay a figure out twice (40%
    of its drawing time here), so charts with name labels set their margin from the labels
    (:func:`label_px`) instead.
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


def empty(message: str, height: int = 220) -> go.Figure:
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
    return layout(fig, height)


def ordered(profiles: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Personas from the largest to the smallest (the order of every per-persona chart)."""
    return sorted(profiles["personas"], key=lambda p: (-p["size"], p["id"]))


def metric_title(m: str) -> str:
    if m == "nps":
        return "NPS"
    try:
        return lookup(m).label
    except KeyError:
        return m


def label_px(labels: Iterable[str], font_px: int = 13) -> int:
    """Left margin that fits the longest (escaped) label at our font size, capped."""
    longest = max((len(html.unescape(str(x))) for x in labels), default=0)
    return int(min(380, 16 + 0.56 * font_px * longest))


def wrap(label: str, width: int = 16) -> str:
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


def rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def unique_labels(labels: Iterable[str]) -> list[str]:
    """Make axis labels unique (plotly merges equal category labels into one)."""
    seen: dict[str, int] = {}
    out = []
    for s in labels:
        n = seen.get(s, 0)
        seen[s] = n + 1
        out.append(s if n == 0 else f"{s} ({n + 1})")
    return out
