"""The report's "What works for whom" section and the campaign lines of persona views.

Takes a run's uplift table (:mod:`personas.campaigns.uplift`) and turns it into display-ready
strings (the templates escape them); the sentences come from :mod:`personas.campaigns.advice`
so report and cards say the same thing. :func:`figures` gives the report one forest plot per
tested campaign (:mod:`personas.publish.plots.uplift`). Rows about *likely* personas
(contacted prospects and first-time buyers) are listed apart, named "Likely: ...".
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

import plotly.graph_objects as go

from personas.campaigns.advice import (
    ACTION_KEYS,
    ACTION_TITLES,
    OUTCOME_WORDS,
    interval,
    likely_lines,
    pct,
    persona_lines,
    pp,
    tested_actions,
)
from personas.publish.plots.uplift import figure_id, forests


def section(uplift: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Template context of the section, or None when the run measured no campaign."""
    if not uplift or not uplift.get("campaigns"):
        return None
    response = uplift.get("response", "conversion")
    campaigns = []
    # tested campaigns first; one without any publishable row is only named at the end
    ordered = sorted(uplift["campaigns"], key=lambda c: (not c["causal"], c["campaign"]))
    hidden = [c["campaign"] for c in ordered if not c["rows"]]
    for index, camp in enumerate(ordered):
        if not camp["rows"]:
            continue
        rows = []
        for r in camp["rows"]:
            cell = r[response]
            spend = r["spend"]
            rows.append(
                {
                    "persona": r["persona_name"],
                    "persona_id": r["persona_id"],
                    "overall": r["persona_id"] == "overall",
                    "likely": bool(r.get("likely")),
                    "variant": r["variant"],
                    "n_treatment": f"{r['n_treatment']:,}",
                    "n_control": f"{r['n_control']:,}" if camp["causal"] else "none",
                    "rate_treatment": pct(cell["rate_treatment"]),
                    "rate_control": pct(cell.get("rate_control")),
                    "uplift": pp(cell.get("uplift")),
                    "interval": interval(cell),
                    "conv_1000": _num(r.get("incremental_conversions_per_1000"), "{:+.1f}"),
                    "spend_1000": _num(r.get("incremental_spend_per_1000"), "{:+,.0f}"),
                    "spend_interval": _spend_interval(spend),
                    "verdict": r["verdict"],
                    "small": bool(r.get("small_cell")),
                }
            )
        campaigns.append(
            {
                "name": camp["campaign"],
                "causal": camp["causal"],
                "contacted": f"{camp['contacted']:,}",
                "control": f"{camp['control']:,}",
                "variants": camp["variants"],
                "rows": [r for r in rows if not r["likely"]],
                "likely_rows": [r for r in rows if r["likely"]],
                "likely_contacted": f"{camp.get('likely_contacted', 0):,}",
                "likely_control": f"{camp.get('likely_control', 0):,}",
                "figure": figure_id(index) if camp["causal"] else None,
                "suppressed": camp.get("suppressed_rows", 0),
            }
        )
    method = uplift.get("method", {})
    return {
        "response": OUTCOME_WORDS[response],
        "window_days": uplift.get("window_days"),
        "min_size": uplift.get("min_size"),
        "method": [method[k] for k in ("rates", "spend", "small_cell") if k in method],
        "not_causal": method.get("not_causal"),
        "likely_note": method.get("likely"),
        "campaigns": campaigns,
        "hidden": hidden,
        "any_small": any(r["small"] for c in campaigns for r in c["rows"] + c["likely_rows"]),
    }


def add_campaigns(
    view: MutableMapping[str, Any], uplift: Mapping[str, Any] | None
) -> MutableMapping[str, Any]:
    """Put a persona's measured campaign lines and tested-message actions into its view.

    A run measured by :func:`personas.campaigns.uplift.measure_run` has the tested actions in
    its ``profiles.json`` already (first in the persona's actions): they are not added twice.
    """
    pid = view["id"]
    view["campaign_lines"] = persona_lines(uplift, pid)
    view["likely_campaign_lines"] = likely_lines(uplift, pid)
    actions = list(view.get("actions", []))
    if any(a.get("key") in ACTION_KEYS.values() for a in actions):
        return view
    tested = [
        {
            "key": ACTION_KEYS[t["kind"]],
            "title": ACTION_TITLES[t["kind"]],
            "what": t["action"],
            "because": t["why"],
        }
        for t in tested_actions(uplift, pid)
    ]
    view["actions"] = tested + actions
    return view


def figures(uplift: Mapping[str, Any] | None) -> dict[str, go.Figure]:
    """The section's forest plots by element id (empty without a measured campaign)."""
    return forests(uplift)


def _spend_interval(spend: Mapping[str, Any]) -> str:
    lo, hi = spend.get("low"), spend.get("high")
    if lo is None or hi is None:
        return "n/a"
    return f"{spend['uplift']:+,.2f} ({lo:+,.2f} to {hi:+,.2f})"


def _num(x: float | None, spec: str) -> str:
    return "n/a" if x is None else spec.format(x)
