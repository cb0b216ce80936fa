"""A simulated stretch of scheduled refreshes over weekly exports (the policy's proof).

Each week: ingest the week's folder, compute features as of the Monday after it, refresh with
the policy (assign or refit, :mod:`personas.refresh`), measure campaigns, publish, alert. The
same steps the ``refresh`` flow runs, without Prefect, so a test and a documented run can replay
a year fast.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from personas import alerts, runs
from personas.config import SegmentationConfig
from personas.lock import WorkspaceLock
from personas.refresh import Policy, refresh_run


def weekly_refreshes(
    raw: str | Path,
    workspace: str | Path,
    policy: Policy,
    segmentation: SegmentationConfig,
    webhook_url: str | None = None,
    weeks: int | None = None,
    keep_runs: int = 30,
) -> list[dict[str, Any]]:
    """Replay the weekly folders of ``raw`` (``week=YYYY-MM-DD``); one row per week."""
    from personas.campaigns.uplift import measure_run
    from personas.features.build import build_features
    from personas.ingest.batch import ingest
    from personas.publish.publication import publish, read_history

    ws = Path(workspace)
    folders = sorted(p for p in Path(raw).iterdir() if p.name.startswith("week="))[:weeks]
    table = []
    for i, folder in enumerate(folders, start=1):
        as_of = date.fromisoformat(folder.name.split("=", 1)[1]) + timedelta(days=7)
        with WorkspaceLock(ws, "personas simulate"):
            ingest([folder], "demo", ws / "lake")
            fs = build_features(ws / "lake", as_of, ws / "features", clv=False)
            res = refresh_run(fs.path, ws / "runs", ws / "published", policy, segmentation)
            measure_run(res.run_dir, ws / "lake")
            pub = publish(res.run_dir, ws / "published", lake_dir=ws / "lake")
            over = res.drift.get("over_threshold") or []
            event = alerts.event_for(res.mode, over)
            fired = bool(event) and alerts.post(webhook_url, event, res.reason, str(pub.report))
            hist = read_history(ws / "published")
            protect = {h["run_id"] for h in hist} | {h.get("model_run") or "" for h in hist}
            runs.prune_runs(ws / "runs", keep_runs, protect | {res.run_dir.name})
        d = res.drift.get("drift") or {}
        table.append(
            {
                "week": i,
                "as_of": as_of.isoformat(),
                "mode": res.mode,
                "reason": res.reason,
                "max_psi": d.get("max_psi"),
                "low_confidence_share": d.get("low_confidence_share"),
                "max_share_shift": d.get("max_share_shift"),
                "new_customer_share": d.get("new_customer_share"),
                "personas": sorted(
                    p["id"] for p in runs.load_run(res.run_dir).profiles["personas"]
                ),
                "alert": event if fired else None,
                "seconds": round(res.seconds, 1),
            }
        )
    return table


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The simulation's table as markdown (docs, closing notes)."""

    def f(v: Any) -> str:
        return "" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    out = [
        "| week | as of | mode | reason | max PSI | low conf. | max share shift | new cust. "
        "| personas | alert |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['week']} | {r['as_of']} | {r['mode']} | {r['reason']} | {f(r['max_psi'])} | "
            f"{f(r['low_confidence_share'])} | {f(r['max_share_shift'])} | "
            f"{f(r['new_customer_share'])} | {' '.join(r['personas'])} | {r['alert'] or ''} |"
        )
    return "\n".join(out)
