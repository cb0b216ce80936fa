"""The report's lifetime-value section: which model priced the customers, and how far to trust it.

Reads the ``clv`` block the feature build recorded (catalog.json, carried into the run's
metrics.json by discovery) and turns it into display strings; the figures are drawn by
:func:`personas.publish.plots.lifetime_fit`. A CLV or churn figure from a model that did not pass
its holdout check keeps a warning on its headline tile; one from no usable model never reaches
the report (the feature build leaves those columns out), and this section says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

VERDICTS = {
    "sound": "Sound: the chosen model forecast the held-out months within 10% in total and "
    "within 20% for every decile but the lowest.",
    "caution": "Use with caution: the chosen model is the best of those compared, but it "
    "missed the held-out months by more than the margins we hold a sound model to.",
    "unreliable": "Not shown: no model described this history soundly, so churn risk and "
    "lifetime value are left out of this report.",
}
CLV_TILES = ("clv_12m", "churn_risk")


def section(clv: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Display-ready view of the CLV model choice (None when the build recorded none)."""
    if not clv:
        return None
    sel = clv.get("selection") or {}
    verdict = str(clv.get("verdict", "unreliable"))
    rows = [
        {
            "model": str(c.get("model")),
            "params": ", ".join(f"{k} = {v:.3g}" for k, v in (c.get("params") or {}).items()),
            "log_likelihood": _fmt(c.get("log_likelihood"), "{:,.1f}"),
            "mae": _fmt(c.get("mae"), "{:.3f}"),
            "total_error": _fmt(c.get("total_error"), "{:+.1%}"),
            "status": _status(c),
            "chosen": bool(c.get("chosen")),
        }
        for c in sel.get("candidates", [])
    ]
    chosen = next((c for c in sel.get("candidates", []) if c.get("chosen")), None)
    deciles = [
        {
            "decile": d["decile"],
            "customers": f"{d['customers']:,}",
            "predicted": f"{d['predicted']:,.0f}",
            "actual": f"{d['actual']:,.0f}",
            "ratio": _fmt(d.get("ratio"), "{:.2f}"),
        }
        for d in (chosen or {}).get("deciles", [])
    ]
    model = clv.get("model") or {}
    checks = list(model.get("checks") or []) + list(
        (clv.get("gamma_gamma") or {}).get("checks") or []
    )
    return {
        "verdict": verdict,
        "verdict_text": VERDICTS.get(verdict, verdict),
        "reasons": list(clv.get("reasons") or []),
        "notes": list(clv.get("notes") or []),
        "chosen": model.get("name") or sel.get("chosen"),
        "rule": sel.get("rule"),
        "clock": clv.get("clock_description") or sel.get("clock_description"),
        "holdout": _period(sel),
        "candidates": rows,
        "deciles": deciles,
        "checks": [c["message"] for c in checks],
        "has_figure": bool(chosen and sel.get("tracking")),
    }


def flag_tiles(kpis: list[dict[str, str]], view: Mapping[str, Any] | None) -> None:
    """Put the model's caveat on the CLV and churn tiles when it is not sound."""
    if not view or view["verdict"] == "sound":
        return
    labels = {"Average 12-month CLV", "Average churn risk"}
    for k in kpis:
        if k["label"] in labels:
            k["note"] = "⚠ model caution: see “How far to trust lifetime value”"


def _status(row: Mapping[str, Any]) -> str:
    if row.get("error"):
        return f"failed: {row['error']}"
    bad = [
        c["check"].replace("_", " ") for c in row.get("checks", []) if c["severity"] == "degenerate"
    ]
    return "degenerate (" + ", ".join(bad) + ")" if bad else "usable"


def _period(sel: Mapping[str, Any]) -> str | None:
    from datetime import date, timedelta

    if "calibration_end" not in sel:
        return None
    epoch = date(1970, 1, 1)
    cal = epoch + timedelta(days=int(sel["calibration_end"]))
    end = epoch + timedelta(days=int(sel["holdout_end"]) - 1)
    return f"calibration before {cal.isoformat()}, holdout {cal.isoformat()} to {end.isoformat()}"


def _fmt(x: Any, spec: str) -> str:
    return "–" if x is None else spec.format(x)
