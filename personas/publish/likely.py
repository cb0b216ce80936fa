"""The report's likely-persona section: how well prospects and new customers can be placed.

Reads the ``likely_persona`` block discovery recorded in ``metrics.json`` (held-out accuracy and
log-loss against the prior, per-persona confusion table, reliability curve, counts) and turns it
into display strings; the calibration figure is :func:`personas.publish.plots.likely_calibration`.
Counts below the minimum persona size are shown as "fewer than N", like unpublished groups.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

STAGE_NAMES = {
    "prospect": "Prospects (no purchase yet)",
    "one_time": "New customers (one purchase)",
}


def section(block: Mapping[str, Any] | None, profiles: Mapping[str, Any]) -> dict[str, Any] | None:
    """Display-ready view of the likely-persona evidence (None when discovery made none)."""
    if not block:
        return None
    names = {p["id"]: p["name"] for p in profiles["personas"]}
    names["undecided"] = "Undecided"
    names["none"] = "No likely persona"
    min_size = int(profiles["min_persona_size"])
    stages = []
    for stage, ev in (block.get("stages") or {}).items():
        counts = (block.get("counts") or {}).get(stage) or {}
        row: dict[str, Any] = {
            "stage": STAGE_NAMES.get(stage, stage),
            "used": bool(ev.get("used")),
            "reason": ev.get("reason", ""),
            "accuracy": None,  # no held-out check (no signal column, one persona)
            "counts": [
                {"id": k, "name": names.get(k, k), "count": _count(v, min_size)}
                for k, v in counts.items()
            ],
        }
        if "accuracy" in ev:
            classes = ev["classes"]
            row.update(
                held_out=f"{ev['held_out']:,}",
                accuracy=f"{ev['accuracy']:.1%}",
                prior_accuracy=f"{ev['prior_accuracy']:.1%}",
                log_loss=f"{ev['log_loss']:.3f}",
                prior_log_loss=f"{ev['prior_log_loss']:.3f}",
                prior=names.get(ev["prior"], ev["prior"]),
                signals=", ".join(ev.get("signals", [])),
                classes=[names.get(c, c) for c in classes],
                confusion=[
                    {"persona": names.get(c, c), "cells": [f"{n:,}" for n in r]}
                    for c, r in zip(classes, ev["confusion"], strict=True)
                ],
            )
        stages.append(row)
    return {
        "threshold": f"{float(block.get('threshold', 0.5)):.0%}",
        "reason": block.get("reason"),
        "stages": stages,
        "has_figure": any(ev.get("reliability") for ev in (block.get("stages") or {}).values()),
    }


def _count(n: int, min_size: int) -> str:
    return f"{n:,}" if n >= min_size else f"fewer than {min_size:,}"
