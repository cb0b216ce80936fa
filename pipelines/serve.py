"""Serve the ``refresh`` flow as a scheduled deployment.

``flow.serve`` registers a deployment with a cron schedule on the Prefect server named by
``PREFECT_API_URL`` and then polls it for scheduled runs; schedules need a real server, not the
temporary one a plain flow call starts.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.flows import refresh

REPO_ROOT = Path(__file__).resolve().parents[1]


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


def deploy_refresh(
    cron: str,
    pool: str = "personas",
    name: str = "personas-refresh",
    config_path: str | None = None,
    mode: str | None = None,
) -> str:
    """Register ``refresh`` as a deployment on a process work pool; return its id.

    The pool is created when missing. A worker started with ``prefect worker start --pool
    <pool>`` on a machine with this checkout runs the scheduled flow runs in subprocesses
    (the code is loaded from this folder, so no image or storage is needed).
    """
    import os

    if not os.environ.get("PREFECT_API_URL"):
        from personas.errors import PersonasError

        raise PersonasError(
            "deploy needs a running Prefect server: start one with `uv run prefect server "
            "start` and export PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    import asyncio
    import contextlib

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    async def ensure_pool() -> None:
        async with get_client() as client:
            with contextlib.suppress(ObjectAlreadyExists):
                await client.create_work_pool(WorkPoolCreate(name=pool, type="process"))

    asyncio.run(ensure_pool())
    params: dict[str, object] = {"config_path": str(Path(config_path).resolve())}
    if mode:
        params["mode"] = mode
    dep_id = refresh.from_source(
        source=str(REPO_ROOT), entrypoint="pipelines/flows.py:refresh"
    ).deploy(
        name=name,
        work_pool_name=pool,
        cron=cron,
        parameters=params if config_path else ({"mode": mode} if mode else {}),
        description="Scheduled persona refresh: assign by default, refit on evidence.",
        tags=["personas"],
        build=False,
        push=False,
        print_next_steps=False,
    )
    return str(dep_id)
