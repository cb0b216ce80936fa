"""The report's "Drift" section: why this run assigned or refitted, and drift over runs.

Reads the refresh record a run keeps (``drift.json``: mode, reason, figures, thresholds; see
:mod:`personas.refresh`) and the publication history, whose lines carry each run's drift
summary (:func:`summary`), and draws the four measures over runs with their thresholds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

# measure key in a history line -> (label, threshold key in drift.json's thresholds)
MEASURES = {
    "max_psi": ("Largest PSI of a model feature", "psi"),
    "low_confidence_share": ("Share assigned with low confidence", "low_confidence"),
    "max_share_shift": ("Largest persona share shift", "share_shift"),
    "new_customer_share": ("Share of customers new since the model", "new_customers"),
}


def summary(d: Mapping[str, Any]) -> dict[str, Any] | None:
    """The drift figures a history line keeps (the report draws them over runs)."""
    dr = d.get("drift")
    if not dr:
        return None
    out = {k: dr.get(k) for k in MEASURES}
    out["psi"] = dr.get("psi")
    return out


def section(run_drift: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> dict | None:
    """Display-ready view: this run's decision, its figures, the runs table (None if no record)."""
    if not run_drift:
        return None
    dr = run_drift.get("drift") or {}
    th = run_drift.get("thresholds") or {}
    rows = []
    for key, (label, tkey) in MEASURES.items():
        v, t = dr.get(key), th.get(tkey)
        rows.append(
            {
                "measure": label,
                "value": "n/a" if v is None else f"{v:.3f}",
                "threshold": "n/a" if t is None else f"{t:g}",
                "over": v is not None and t is not None and abs(v) > t,
            }
        )
    psi = sorted((dr.get("psi") or {}).items(), key=lambda kv: -kv[1])[:8]
    runs = [
        {
            "run_id": h.get("run_id"),
            "as_of": h.get("as_of"),
            "mode": h.get("mode") or "refit",
            "reason": h.get("reason") or "",
        }
        for h in history
    ]
    return {
        "mode": run_drift.get("mode"),
        "reason": run_drift.get("reason"),
        "model_run": run_drift.get("model_run"),
        "measures": rows,
        "top_psi": [{"feature": f, "psi": f"{v:.3f}"} for f, v in psi],
        "runs": runs[-20:],
    }


def figure(history: Sequence[Mapping[str, Any]], thresholds: Mapping[str, Any]) -> go.Figure:
    """The four measures over published runs, each with its threshold as a dashed line."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=2, subplot_titles=[m[0] for m in MEASURES.values()])
    x = [str(h.get("as_of") or h.get("run_id")) for h in history]
    modes = [h.get("mode") or "refit" for h in history]
    for i, (key, (label, tkey)) in enumerate(MEASURES.items()):
        r, c = i // 2 + 1, i % 2 + 1
        y = [(h.get("drift") or {}).get(key) for h in history]
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines+markers",
                name=label,
                text=modes,
                hovertemplate="%{x}: %{y:.3f} (%{text})<extra></extra>",
                marker={"symbol": ["star" if m == "refit" else "circle" for m in modes]},
                showlegend=False,
            ),
            row=r,
            col=c,
        )
        t = thresholds.get(tkey)
        if t is not None:
            fig.add_hline(y=t, line_dash="dash", line_color="#c0392b", row=r, col=c)
    fig.update_layout(height=520, margin={"t": 40, "l": 40, "r": 20, "b": 40})
    return fig


def markdown(record: dict[str, Any]) -> str:
    """The refresh decision and drift figures as the Prefect markdown artifact."""
    view = section(record, [])
    if view is None:
        return "No refresh record."
    lines = [
        f"**{view['reason']}**",
        "",
        "| measure | this run | threshold | over |",
        "|---|---|---|---|",
    ]
    for m in view["measures"]:
        lines.append(
            f"| {m['measure']} | {m['value']} | {m['threshold']} | {'over' if m['over'] else ''} |"
        )
    if view["top_psi"]:
        lines += ["", "| feature | PSI |", "|---|---|"]
        lines += [f"| {f['feature']} | {f['psi']} |" for f in view["top_psi"]]
    return "\n".join(lines)
