"""Change over time: migration between runs (Sankey) and persona sizes across publications."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from personas.publish.plots.style import (
    OTHER_COLOUR,
    empty,
    esc,
    layout,
    names,
    persona_colour,
    rgba,
)


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
        return empty("No customers in common with the previous run.")
    left = sorted(flows["src"].unique(), key=lambda s: node_key(gid_of.get(("prev", s), s)))
    right = sorted(flows["dst"].unique(), key=lambda s: node_key(gid_of.get(("cur", s), s)))
    labels = left + right
    index = {("prev", s): i for i, s in enumerate(left)}
    index.update({("cur", s): len(left) + i for i, s in enumerate(right)})
    node_col = [_node_colour(gid_of.get(("prev", s), ""), s) for s in left] + [
        _node_colour(gid_of.get(("cur", s), ""), s) for s in right
    ]
    link_col = [rgba(node_col[index[("prev", s)]], 0.35) for s in flows["src"]]
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
    return layout(
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
        return empty("No run history yet.")
    xs = run_labels(history)
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
    for pid in sorted(series, key=node_key):
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
    return layout(
        fig,
        380,
        automargin=True,
        hovermode="closest",
        legend={"orientation": "v", "bgcolor": "rgba(255,255,255,0.8)"},
    )


def node_key(gid: str) -> tuple[int, int, str]:
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


def run_labels(history: Sequence[Mapping[str, Any]]) -> list[str]:
    """x labels of the trend: the as-of date, with the run id when two runs share a date."""
    dates = [str(h.get("as_of") or h.get("run_id")) for h in history]
    out = []
    for d, h in zip(dates, history, strict=True):
        out.append(d if dates.count(d) == 1 else f"{d} ({h.get('run_id')})")
    return out
