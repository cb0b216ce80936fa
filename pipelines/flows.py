"""Prefect flows: ingest -> build_features -> discover_personas -> publish, and ``refresh``.

Flows are thin: each task body is one call into the ``personas`` library, tasks pass file paths
(never DataFrames), and the flows own what an orchestrator is for: retries on reading sources,
logs for unattended runs, artifacts, and the rule that a refresh which fails anywhere leaves
the last good publication in place.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from personas import runs
from personas.config import Config, load_config
from personas.lock import WorkspaceLock
from personas.publish import driftview
from pipelines import lifeline

lifeline.install()  # a temporary Prefect server dies with the process that started it

_DEFAULT = Config()  # where things live when a flow is called without a workspace


def _log_progress(prefix: str, every: float = 0.1):
    """A progress callback that logs roughly every 10% (flows have logs, not progress bars)."""
    logger = get_run_logger()
    last = {"step": None, "frac": -1.0}

    def cb(step: str, done: int, total: int) -> None:
        frac = done / total if total else 1.0
        if step != last["step"] or frac - last["frac"] >= every or done == total:
            logger.info("%s: %s %d/%d", prefix, step, done, total)
            last.update(step=step, frac=frac)

    return cb


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only what may pass on a second try (a share that hiccuped, a file still copied).

    An error the library raises on purpose (a bad mapping, a missing PII key, a refused file)
    fails the same way every time: retrying it only delays the message by the retry waits.
    """
    from personas.errors import PersonasError

    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None:
        try:
            exc = state.result(raise_on_failure=False)
        except Exception:  # the result may be unreadable; then retry as before
            return True
    return not isinstance(exc, PersonasError)


# ---- tasks -------------------------------------------------------------------------------
@task(
    name="ingest-sources",
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=retry_transient,
)
def ingest_task(sources: list[str], mapping: str, lake_dir: str) -> dict[str, Any]:
    from personas.ingest.batch import ingest

    report = ingest(sources, mapping, lake_dir, progress=_log_progress("ingest"))
    get_run_logger().info(report.summary())
    return {
        "batch_id": report.batch_id,
        **report.totals(),
        "rules": report.rules(),
        "skipped": len(report.skipped),
        "seconds": round(report.seconds, 2),
    }


@task(name="build-features")
def features_task(
    lake_dir: str,
    features_dir: str,
    as_of: str | None,
    memory_limit: str | None,
    threads: int | None,
    clv: bool,
    clv_holdout: float = 0.25,
    clv_clock: str = "auto",
    engine: str = "duckdb",
    spark_master: str | None = None,
) -> str:
    from personas.features.build import build_features

    fs = build_features(
        lake_dir,
        as_of,
        features_dir,
        memory_limit=memory_limit,
        threads=threads,
        clv=clv,
        clv_holdout=clv_holdout,
        clv_clock=clv_clock,
        engine=engine,
        spark_master=spark_master,
    )
    get_run_logger().info(
        "features as of %s: %d customers x %d features in %.1f s -> %s",
        fs.as_of,
        fs.customers,
        len(fs.columns),
        fs.seconds,
        fs.path,
    )
    return str(fs.path)


@task(name="discover-personas")
def discover_task(
    features_path: str, runs_dir: str, previous_dir: str | None, segmentation: dict[str, Any]
) -> str:
    from personas.config import SegmentationConfig
    from personas.discover import discover

    res = discover(
        features_path,
        runs_dir,
        previous_dir,
        SegmentationConfig.model_validate(segmentation),
        progress=_log_progress("discover"),
    )
    get_run_logger().info(
        "%d personas (%s), stability %.2f, rule fidelity %.2f -> %s",
        res.k,
        res.algorithm,
        res.stability,
        res.fidelity,
        res.run_dir,
    )
    return str(res.run_dir)


@task(name="measure-campaigns")
def uplift_task(run_dir: str, lake_dir: str, campaigns: dict[str, Any]) -> int:
    """Campaign response and uplift per persona into the run folder (0 campaigns: none)."""
    from personas.campaigns.uplift import measure_run

    out = measure_run(run_dir, lake_dir, **campaigns)
    n = len(out["campaigns"]) if out else 0
    get_run_logger().info("campaigns measured against their control arms: %d", n)
    return n


@task(name="assign-or-refit")
def refresh_task(
    features_path: str,
    runs_dir: str,
    published_dir: str,
    segmentation: dict[str, Any],
    refresh_cfg: dict[str, Any],
    mode: str | None,
    engine: str = "local",
    spark_master: str | None = None,
) -> dict[str, Any]:
    from personas.config import RefreshConfig, SegmentationConfig
    from personas.refresh import refresh_run

    res = refresh_run(
        features_path,
        runs_dir,
        published_dir,
        RefreshConfig.model_validate(refresh_cfg).policy(mode),
        SegmentationConfig.model_validate(segmentation),
        progress=_log_progress("refresh"),
        engine=engine,
        spark_master=spark_master,
    )
    get_run_logger().info("%s (%.1f s) -> %s", res.reason, res.seconds, res.run_dir)
    return {
        "run_dir": str(res.run_dir),
        "mode": res.mode,
        "reason": res.reason,
        "drifted": res.drifted,
        "drift": res.drift,
    }


@task(name="publish-run")
def publish_task(run_dir: str, published_dir: str, lake_dir: str | None) -> dict[str, Any]:
    from personas.publish.publication import publish
    from personas.publish.summary import summary_markdown, summary_table

    res = publish(run_dir, published_dir, lake_dir=lake_dir)
    return {
        "report": str(res.report),
        "latest": str(res.latest),
        "cards": [str(c) for c in res.cards],
        "audiences": [str(a) for a in res.audiences],
        "summary_markdown": summary_markdown(res.profiles),
        "summary_table": summary_table(res.profiles),
    }


# ---- flows -------------------------------------------------------------------------------
@flow(name="ingest", log_prints=True)
def ingest_flow(sources: list[str], mapping: str, lake_dir: str | None = None) -> dict[str, Any]:
    """Ingest source files into the lake (idempotent: known files are skipped).

    Holds the workspace lock of the lake's parent folder (re-entrant inside ``refresh``).
    """
    lake_dir = lake_dir or str(_DEFAULT.lake_dir)
    with WorkspaceLock(Path(lake_dir).parent, "personas ingest"):
        return ingest_task(sources, mapping, lake_dir)


@flow(name="build_features")
def build_features_flow(
    lake_dir: str | None = None,
    features_dir: str | None = None,
    as_of: date | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
    clv: bool = True,
    clv_holdout: float = 0.25,
    clv_clock: str = "auto",
    engine: str = "duckdb",
    spark_master: str | None = None,
) -> str:
    """Per-customer features as of a date (default: the day after the last transaction)."""
    return features_task(
        lake_dir or str(_DEFAULT.lake_dir),
        features_dir or str(_DEFAULT.features_dir),
        as_of.isoformat() if as_of else None,
        memory_limit,
        threads,
        clv,
        clv_holdout,
        clv_clock,
        engine,
        spark_master,
    )


@flow(name="discover_personas")
def discover_personas_flow(
    features_path: str,
    runs_dir: str | None = None,
    published_dir: str | None = None,
    segmentation: dict[str, Any] | None = None,
) -> str:
    """Fit personas; identities are matched to the latest publication."""
    previous = runs.published_run(published_dir or _DEFAULT.published_dir)
    return discover_task(
        features_path,
        runs_dir or str(_DEFAULT.runs_dir),
        str(previous) if previous else None,
        segmentation or {},
    )


@flow(name="publish")
def publish_flow(
    run_dir: str, published_dir: str | None = None, lake_dir: str | None = None
) -> dict[str, Any]:
    """Write report, cards and audiences; switch ``published/latest`` only on success."""
    out = publish_task(
        run_dir,
        published_dir or str(_DEFAULT.published_dir),
        lake_dir if lake_dir is not None else str(_DEFAULT.lake_dir),
    )
    create_markdown_artifact(
        markdown=out.pop("summary_markdown"),
        key="persona-summary",
        description="Personas of the latest refresh",
    )
    create_table_artifact(
        table=out.pop("summary_table"),
        key="persona-table",
        description="Persona sizes and key metrics",
    )
    create_link_artifact(
        link=Path(out["report"]).resolve().as_uri(),
        link_text=runs.REPORT,
        key="persona-report",
        description="Self-contained persona report",
    )
    return out


@flow(name="refresh", log_prints=True)
def refresh(
    config_path: str | None = None,
    sources: list[str] | None = None,
    mapping: str | None = None,
    workspace: str | None = None,
    as_of: date | None = None,
    mode: str | None = None,
) -> dict[str, Any]:
    """The scheduled job: ingest new files, features, assign or refit, publish.

    ``mode`` (auto, assign, refit; default the config's ``refresh.mode``) chooses between
    scoring with the published model and a new discovery (personas.refresh). Runs are
    idempotent: files already in the lake are skipped, and unchanged data yields the same
    personas with the same ids and names. A failure leaves the last publication as is.
    """
    cfg = _config(config_path, workspace, mapping, sources, as_of)
    with WorkspaceLock(cfg.workspace, "personas refresh", cfg.lock_timeout) as lk:
        if lk.took_over:
            get_run_logger().warning("took over the workspace lock of %s", lk.took_over)
        try:
            result = _refresh(cfg, mode)
            result["lock_took_over"] = lk.took_over
            return result
        except BaseException as e:
            from personas.alerts import post

            post(
                cfg.alerts.webhook_url,
                "failure",
                f"{type(e).__name__}: {e}".splitlines()[0],
                workspace=str(cfg.workspace),
                timeout=cfg.alerts.timeout,
            )
            raise


def _refresh(cfg: Config, mode: str | None) -> dict[str, Any]:
    logger = get_run_logger()
    result: dict[str, Any] = {"workspace": str(cfg.workspace)}
    if cfg.sources:
        if not cfg.mapping:
            raise ValueError(
                "sources given without a mapping: set mapping: in the config or pass --mapping"
            )
        result["ingest"] = ingest_flow(cfg.sources, cfg.mapping, str(cfg.lake_dir))
    else:
        logger.info("no sources configured: refreshing from the lake as it is")
    f = cfg.features
    features_path = build_features_flow(
        str(cfg.lake_dir),
        str(cfg.features_dir),
        f.as_of,
        f.memory_limit,
        f.threads,
        f.clv,
        f.clv_holdout,
        f.clv_clock,
        f.engine,
        f.spark_master,
    )
    decided = refresh_task(
        features_path,
        str(cfg.runs_dir),
        str(cfg.published_dir),
        cfg.segmentation.model_dump(mode="json"),
        cfg.refresh.model_dump(mode="json"),
        mode,
        "spark" if f.engine == "spark" else "local",  # features on Spark: assignment too
        f.spark_master,
    )
    run_dir = decided["run_dir"]
    result.update(mode=decided["mode"], reason=decided["reason"], drift=decided["drift"])
    result["campaigns"] = uplift_task(
        run_dir, str(cfg.lake_dir), cfg.campaigns.model_dump(mode="json")
    )
    result["publish"] = publish_flow(run_dir, str(cfg.published_dir), str(cfg.lake_dir))
    result["run_dir"] = run_dir
    create_markdown_artifact(
        markdown=driftview.markdown(decided["drift"]),
        key="refresh-drift",
        description="Refresh decision and drift against the model",
    )
    result["alerted"] = alert_task(
        cfg.alerts.model_dump(mode="json"), decided, result["publish"]["report"], str(cfg.workspace)
    )
    result["pruned"] = prune_task(str(cfg.runs_dir), str(cfg.published_dir), cfg.refresh.keep_runs)
    logger.info("report: %s", result["publish"]["report"])
    return result


@task(name="alert")
def alert_task(
    alerts: dict[str, Any], decided: dict[str, Any], report: str, workspace: str
) -> str | None:
    """Post to the webhook on a refit or drift over threshold (never fails the run)."""
    from personas.alerts import event_for, post

    over = (decided.get("drift") or {}).get("over_threshold") or []
    event = event_for(decided["mode"], over)
    if event is None or not alerts.get("webhook_url"):
        return None
    ok = post(
        alerts["webhook_url"],
        event,
        decided["reason"],
        report,
        {"mode": decided["mode"], "over_threshold": over},
        workspace,
        alerts.get("timeout", 10.0),
    )
    return event if ok else f"{event} (webhook failed)"


@task(name="prune-runs")
def prune_task(runs_dir: str, published_dir: str, keep: int) -> list[str]:
    """Keep the newest runs and every run the publication references."""
    from personas.publish.publication import read_history

    protect = {h.get("run_id") for h in read_history(published_dir)}
    protect |= {h.get("model_run") for h in read_history(published_dir)}
    live = runs.published_run(published_dir)
    if live is not None:
        protect.add(live.name)
    removed = runs.prune_runs(runs_dir, keep, {p for p in protect if p})
    if removed:
        get_run_logger().info("pruned %d old run folder(s)", len(removed))
    return [str(p) for p in removed]


def _config(
    config_path: str | None,
    workspace: str | None,
    mapping: str | None,
    sources: list[str] | None,
    as_of: date | None,
) -> Config:
    return load_config(
        config_path,
        workspace=workspace,
        mapping=mapping,
        sources=list(sources) if sources else None,
        **{"features.as_of": as_of.isoformat() if as_of else None},
    )
