"""The report's "What works for whom" section and the campaign lines of persona views.

Takes a run's uplift table (:mod:`personas.campaigns.uplift`) and turns it into display-ready
strings (the templates escape them); the sentences come from :mod:`personas.campaigns.advice`
so report and cards say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from personas.campaigns.advice import (
    OUTCOME_WORDS,
    interval,
    pct,
    persona_lines,
    pp,
    tested_actions,
)


def section(uplift: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Template context of the section, or None when the run measured no campaign."""
    if not uplift or not uplift.get("campaigns"):
        return None
    response = uplift.get("response", "conversion")
    campaigns = []
    # tested campaigns first; one without any publishable row is only named at the end
    ordered = sorted(uplift["campaigns"], key=lambda c: (not c["causal"], c["campaign"]))
    hidden = [c["campaign"] for c in ordered if not c["rows"]]
    for camp in ordered:
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
                "rows": rows,
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
        "campaigns": campaigns,
        "hidden": hidden,
        "any_small": any(r["small"] for c in campaigns for r in c["rows"]),
    }


def add_campaigns(
    view: MutableMapping[str, Any], uplift: Mapping[str, Any] | None
) -> MutableMapping[str, Any]:
    """Put a persona's measured campaign lines and tested-message actions into its view."""
    pid = view["id"]
    view["campaign_lines"] = persona_lines(uplift, pid)
    tested = [
        {
            "title": "Tested message" if t["kind"] == "recommend" else "Warning",
            "what": t["action"],
            "because": t["why"],
        }
        for t in tested_actions(uplift, pid)
    ]
    view["actions"] = tested + list(view.get("actions", []))
    return view


def _spend_interval(spend: Mapping[str, Any]) -> str:
    lo, hi = spend.get("low"), spend.get("high")
    if lo is None or hi is None:
        return "n/a"
    return f"{spend['uplift']:+,.2f} ({lo:+,.2f} to {hi:+,.2f})"


def _num(x: float | None, spec: str) -> str:
    return "n/a" if x is None else spec.format(x)
