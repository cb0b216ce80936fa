"""Serve the ``refresh`` flow as a scheduled deployment.

``flow.serve`` registers a deployment with a cron schedule on the Prefect server named by
``PREFECT_API_URL`` and then polls it for scheduled runs; schedules need a real server, not the
temporary one a plain flow call starts.
"""

from __future__ import annotations

from pipelines.flows import refresh


def serve_refresh(
    cron: str, name: str = "personas-refresh", config_path: str | None = None
) -> None:
    """Block, running ``refresh`` on the cron schedule until interrupted."""
    refresh.serve(
        name=name,
        cron=cron,
        parameters={"config_path": config_path},
        description="Nightly persona refresh: ingest new files, features, personas, report.",
        tags=["personas"],
    )
