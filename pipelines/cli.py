"""The ``personas`` command line.

Each pipeline step is a subcommand that calls the library (with a progress bar); ``refresh``
and ``demo`` run the Prefect ``refresh`` flow end to end; ``serve`` schedules it. Errors that
the package raises on purpose are printed as one clear message, without a traceback.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from pipelines import humane

DEMO_KEY = "personas-demo-key-not-secret"


@contextmanager
def progress_bar(desc: str) -> Iterator[Callable[[str, int, int], None]]:
    """A tqdm bar driven by the library's ``progress(step, done, total)`` callbacks."""
    from tqdm import tqdm

    bar = tqdm(
        total=0,
        desc=desc,
        unit="step",
        leave=True,
        disable=not sys.stderr.isatty() and os.environ.get("PERSONAS_PROGRESS") != "1",
    )

    def cb(step: str, done: int, total: int) -> None:
        if total and bar.total != total:
            bar.reset(total=total)
        bar.set_postfix_str(step, refresh=False)
        bar.n = done
        bar.refresh()

    try:
        yield cb
    finally:
        bar.close()


def _prefect_env() -> None:
    """Quiet, offline-friendly Prefect defaults (a user's own settings win)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        from personas.diskspace import disk_full, is_disk_full
        from personas.errors import PersonasError

        try:
            return super().invoke(ctx)
        except PersonasError as e:
            click.secho(f"error: {e}", fg="red", err=True)
            sys.exit(2)
        except Exception as e:
            if not is_disk_full(e):  # the steps say it themselves; this is the safety net
                raise
            where = getattr(e, "filename", None) or Path.cwd()
            click.secho(f"error: {disk_full(where, 0)}", fg="red", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="personas")
def main() -> None:
    """Buyer personas from purchase and behaviour data.

    \b
    Typical use:
      personas demo                                   # synthetic data, end to end
      personas ingest exports/*.csv.gz --mapping my.yaml
      personas refresh                                # features -> personas -> report
      personas serve --cron "0 3 * * *"               # nightly, needs `prefect server start`

    Data lives under --workspace (default ./data): lake/, features/, runs/, published/.
    """


workspace_opt = click.option(
    "--workspace",
    "-w",
    type=click.Path(file_okay=False),
    default=None,
    help="Workspace folder (default: data, or the config's workspace).",
)
config_opt = click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="personas.yaml with settings (optional).",
)


def _cfg(config_path: str | None, workspace: str | None, **over: object):
    from personas.config import load_config

    return load_config(config_path, workspace=workspace, **over)


@main.command()
@click.option("--customers", "-n", default=10_000, show_default=True, help="Customers to generate.")
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--noise",
    type=click.Choice(["clean", "noisy"]),
    default="clean",
    show_default=True,
    help="How strongly the planted personas overlap.",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False),
    default="data/demo/raw",
    show_default=True,
    help="Folder for the generated export files.",
)
@click.option(
    "--weeks",
    type=int,
    default=None,
    help="Write this many weekly folders (week=YYYY-MM-DD/) with a planted change instead.",
)
@click.option(
    "--change-week",
    type=int,
    default=30,
    show_default=True,
    help="With --weeks: first week where one persona grows and a new category appears (0: none).",
)
def generate(
    customers: int, seed: int, noise: str, out: str, weeks: int | None, change_week: int
) -> None:
    """Write synthetic retailer exports with planted personas (truth.parquet beside them).

    --weeks: weekly exports where from --change-week one persona grows and a category appears.
    """
    if weeks:
        return humane.generate_weeks(out, weeks, seed, customers, change_week)
    from personas.synthetic.retailer import generate as gen

    with progress_bar("generate") as cb:
        info = gen(
            out,
            customers=customers,
            seed=seed,
            noise=noise,
            progress=lambda d, t: cb("customers", d, t),
        )
    for name, n in info.rows.items():
        click.echo(f"  {name:<13} {n:>12,} rows")
    click.echo(f"wrote {out} (ground truth: {Path(out) / 'truth.parquet'})")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--mapping",
    "-m",
    required=True,
    help="Mapping YAML, or a shipped one: demo, online_retail, cdnow, dunnhumby, hillstrom.",
)
@click.option(
    "--lake",
    type=click.Path(file_okay=False),
    default=None,
    help="Lake folder (default: <workspace>/lake).",
)
@workspace_opt
@config_opt
def ingest(
    files: tuple[str, ...],
    mapping: str,
    lake: str | None,
    workspace: str | None,
    config_path: str | None,
) -> None:
    """Ingest FILES (or folders) into the lake as one atomic batch.

    Prints the row accounting: input = accepted + quarantined + duplicates. Files already in
    the lake (same content) are skipped.
    """
    from personas.ingest.batch import ingest as run

    cfg = _cfg(config_path, workspace)
    lake_dir = Path(lake) if lake else cfg.lake_dir
    with humane.locked(cfg, "personas ingest"), progress_bar("ingest") as cb:
        report = run(list(files), mapping, lake_dir, progress=cb)
    click.echo(report.summary())
    click.echo(f"lake: {lake_dir}")


@main.command()
@click.option(
    "--as-of",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Use data before this date (default: day after the last transaction).",
)
@click.option("--memory-limit", default=None, help="DuckDB memory limit, e.g. 2GB.")
@click.option(
    "--engine",
    type=click.Choice(["duckdb", "spark"]),
    default=None,
    help="Where the SQL runs (default: the config's features.engine, duckdb).",
)
@click.option("--spark-master", default=None, help="Spark master URL (default: local[2]).")
@click.option(
    "--lake-versions",
    default=None,
    help="Read these Delta table versions, e.g. transactions=3,customers=1 (a run's "
    "lake_versions: the same features again); default: the lake as it is now.",
)
@workspace_opt
@config_opt
def features(
    as_of: object,
    memory_limit: str | None,
    engine: str | None,
    spark_master: str | None,
    lake_versions: str | None,
    workspace: str | None,
    config_path: str | None,
) -> None:
    """Compute per-customer features as of a date into <workspace>/features/."""
    from personas.features.build import build_features

    cfg = _cfg(config_path, workspace)
    fs = build_features(
        cfg.lake_dir,
        as_of.date() if as_of else cfg.features.as_of,
        cfg.features_dir,
        memory_limit=memory_limit or cfg.features.memory_limit,
        clv=cfg.features.clv,
        clv_holdout=cfg.features.clv_holdout,
        clv_clock=cfg.features.clv_clock,
        versions=humane.parse_versions(lake_versions),
        engine=engine or cfg.features.engine,
        spark_master=spark_master or cfg.features.spark_master,
    )
    click.echo(
        f"{fs.customers:,} customers x {len(fs.columns)} features as of {fs.as_of} "
        f"in {fs.seconds:.1f} s -> {fs.path}"
    )


@main.command()
@click.option(
    "--features",
    "features_path",
    type=click.Path(exists=True),
    default=None,
    help="features.parquet (default: the newest computed for the current lake).",
)
@click.option("--k", default=None, help="Number of personas, or auto.")
@click.option("--seed", type=int, default=None, help="Random seed.")
@workspace_opt
@config_opt
def discover(
    features_path: str | None,
    k: str | None,
    seed: int | None,
    workspace: str | None,
    config_path: str | None,
) -> None:
    """Discover personas and write a run folder under <workspace>/runs/."""
    from personas.discover import discover as run

    cfg = _cfg(
        config_path,
        workspace,
        **{"segmentation.k": humane.parse_k(k), "segmentation.random_state": seed},
    )
    from personas.runs import published_run

    if features_path:
        path = Path(features_path)
    else:
        from personas.features.build import latest_features
        from personas.lake import Lake

        lake = Lake(cfg.lake_dir)
        path, why = latest_features(cfg.features_dir, lake.fingerprint() if lake.exists() else None)
        click.echo(f"features: {path} ({why})")
    with progress_bar("discover") as cb:
        res = run(
            path, cfg.runs_dir, published_run(cfg.published_dir), cfg.segmentation, progress=cb
        )
    click.echo(
        f"{res.k} personas ({res.algorithm}), stability {res.stability:.2f}, "
        f"rule fidelity {res.fidelity:.2f} in {res.seconds:.0f} s -> {res.run_dir}"
    )


@main.command()
@click.argument("run_dir", required=False, type=click.Path(exists=True, file_okay=False))
@workspace_opt
@config_opt
def publish(run_dir: str | None, workspace: str | None, config_path: str | None) -> None:
    """Write report, cards and audiences for RUN_DIR (default: newest run) and publish it."""
    from personas.publish.publication import publish as run
    from personas.runs import newest_run

    cfg = _cfg(config_path, workspace)
    rd = Path(run_dir) if run_dir else newest_run(cfg.runs_dir)
    with humane.locked(cfg, "personas publish"):
        res = run(
            rd,
            cfg.published_dir,
            lake_dir=cfg.lake_dir if cfg.lake_dir.exists() else None,
            lock_timeout=cfg.lock_timeout,
        )
    click.echo(f"report: {res.report}\npublished: {res.latest}")


@main.command()
@click.option(
    "--source",
    "-s",
    "sources",
    multiple=True,
    type=click.Path(exists=True),
    help="Files or folders to ingest first (repeatable).",
)
@click.option("--mapping", "-m", default=None, help="Mapping for --source.")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option(
    "--mode",
    type=click.Choice(["auto", "assign", "refit"]),
    default=None,
    help="auto: refit only on drift, age or a changed feature set (default: refresh.mode).",
)
@click.option("--debug", is_flag=True, help="Show Prefect's logs and tracebacks on the screen.")
@workspace_opt
@config_opt
def refresh(
    sources: tuple[str, ...],
    mapping: str | None,
    as_of: object,
    mode: str | None,
    debug: bool,
    workspace: str | None,
    config_path: str | None,
) -> None:
    """Run the Prefect refresh flow: ingest (optional) -> features -> personas -> publish.

    Without a Prefect server it runs on a temporary one; a failure keeps the last publication.
    """
    _prefect_env()
    if not debug:
        humane.quiet_teardown()
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
    from pipelines.flows import refresh as flow

    t0 = time.perf_counter()
    with humane.one_line_errors("refresh", debug):
        out = flow(
            config_path=config_path,
            sources=list(sources) or None,
            mapping=mapping,
            workspace=workspace,
            as_of=as_of.date() if as_of else None,
            mode=mode,
        )
    if out.get("lock_took_over"):
        click.secho(f"note: took over the workspace lock of {out['lock_took_over']}", err=True)
    click.echo(f"{out['reason']}\nrefresh finished in {time.perf_counter() - t0:.0f} s")
    click.echo(f"report: {out['publish']['report']}")


@main.command()
@click.option("--customers", "-n", default=10_000, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--workspace", "-w", type=click.Path(file_okay=False), default="data", show_default=True
)
def demo(customers: int, seed: int, workspace: str) -> None:
    """Generate the synthetic demo retailer and run the refresh flow on it end to end."""
    _prefect_env()
    if "PERSONAS_PII_KEY" not in os.environ:
        os.environ["PERSONAS_PII_KEY"] = DEMO_KEY
        click.echo("note: PERSONAS_PII_KEY not set; using a demo-only key to hash e-mails")
    raw = Path(workspace) / "demo" / "raw"
    t0 = time.perf_counter()
    meta = raw / "meta.json"
    if not meta.exists() or not humane.same_demo(meta, customers, seed):
        from personas.synthetic.retailer import generate as gen

        with progress_bar("generate") as cb:
            gen(raw, customers=customers, seed=seed, progress=lambda d, t: cb("customers", d, t))
    from pipelines.flows import refresh as flow

    files = sorted(str(p) for p in raw.iterdir() if p.name.endswith((".csv.gz", ".jsonl.gz")))
    out = flow(sources=files, mapping="demo", workspace=workspace)
    click.echo(f"\ndemo finished in {time.perf_counter() - t0:.0f} s")
    click.echo(f"report: {Path(out['publish']['report']).resolve()}")
    click.echo(f"open it in a browser, e.g.  xdg-open {Path(out['publish']['report'])}")


@main.command()
@click.argument("file", type=click.Path(exists=True))
@click.option(
    "--run",
    "run_dir",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Run whose model to use (default: the published one).",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False),
    default=None,
    help="Output (.parquet or .csv; default: <file>.personas.parquet; a folder with Spark).",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "spark"]),
    default="local",
    show_default=True,
    help="Score here (pandas) or on Spark's executors (the spark extra; FILE may be a folder).",
)
@click.option("--spark-master", default=None, help="Spark master URL (default: local[2]).")
@workspace_opt
@config_opt
def assign(
    file: str,
    run_dir: str | None,
    out: str | None,
    engine: str,
    spark_master: str | None,
    workspace: str | None,
    config_path: str | None,
) -> None:
    """Score customers in FILE (a features table) with a published persona model.

    New customers and prospects get an explicit "not yet profiled" group and, when the run
    has a likely-persona model, their likely persona (or "undecided") and its probability.
    """
    from personas.assign import assign_file
    from personas.errors import RunError
    from personas.runs import published_run

    cfg = _cfg(config_path, workspace)
    rd = Path(run_dir) if run_dir else published_run(cfg.published_dir)
    if rd is None:
        raise RunError(f"nothing published under {cfg.published_dir}; run `personas refresh`")
    if engine == "spark":
        from personas.assign_spark import assign_file_spark

        res = assign_file_spark(file, rd, out, master=spark_master or cfg.features.spark_master)
    else:
        res = assign_file(file, rd, out)
    click.echo(res.summary())


@main.command()
@click.option("--cron", required=True, help='Cron schedule, e.g. "0 3 * * *" (03:00 daily).')
@click.option("--name", default="personas-refresh", show_default=True)
@config_opt
def serve(cron: str, name: str, config_path: str | None) -> None:
    """Serve the refresh deployment on a cron schedule (needs a Prefect server).

    Start one first in another terminal:  uv run prefect server start
    and point this process at it:  export PREFECT_API_URL=http://127.0.0.1:4200/api
    """
    _prefect_env()
    if not os.environ.get("PREFECT_API_URL"):
        from personas.errors import PersonasError

        raise PersonasError(
            "serve needs a running Prefect server for its schedule: start one with "
            "`uv run prefect server start` and export PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    from pipelines.serve import serve_refresh

    serve_refresh(cron=cron, name=name, config_path=config_path)


@main.command()
@click.option("--cron", required=True, help='Cron schedule, e.g. "0 3 * * 1" (Mondays 03:00).')
@click.option("--pool", default="personas", show_default=True, help="Process work pool.")
@click.option("--name", default="personas-refresh", show_default=True)
@click.option("--mode", type=click.Choice(["auto", "assign", "refit"]), default=None)
@config_opt
def deploy(cron: str, pool: str, name: str, mode: str | None, config_path: str | None) -> None:
    """Register the refresh as a Prefect deployment on a process work pool (needs a server)."""
    _prefect_env()
    from pipelines.serve import deploy_refresh  # says so when no Prefect server is set

    dep = deploy_refresh(cron, pool, name, config_path, mode)
    click.echo(f"deployment refresh/{name} ({dep}) on work pool {pool!r}, cron {cron!r}")
    click.echo(f"start a worker:  uv run prefect worker start --pool {pool}")


@main.command()
@workspace_opt
@config_opt
def status(workspace: str | None, config_path: str | None) -> None:
    """Show what the lake holds and which run is published (damaged lake files first)."""
    humane.print_status(_cfg(config_path, workspace))


@main.group(cls=_Group)
def lake() -> None:
    """Lake maintenance: the Delta tables under <workspace>/lake (verify, forget, migrate)."""


lake_opt = click.option(
    "--lake",
    "lake_path",
    type=click.Path(file_okay=False),
    default=None,
    help="Lake folder (default: <workspace>/lake).",
)


@lake.command()
@click.option(
    "--full", is_flag=True, help="Also read every file and check rows per batch with the commits."
)
@lake_opt
@workspace_opt
@config_opt
def verify(
    full: bool, lake_path: str | None, workspace: str | None, config_path: str | None
) -> None:
    """Find truncated, deleted or corrupt lake files and say how to recover (exit 1 if any)."""
    from personas.lake import Lake
    from personas.lakecheck import verify as run

    lk = Lake(Path(lake_path) if lake_path else _cfg(config_path, workspace).lake_dir)
    problems = run(lk, full=full)
    files = sum(len(lk.files(t)) for t in lk.snapshot())
    if problems:
        humane.report_problems(lk, problems)
        sys.exit(1)
    how = "read in full, rows match the commits" if full else "present, sizes and magic ok"
    click.echo(f"lake {lk.root}: {files} file(s) in {len(lk.batches())} batch(es), {how}")


@lake.command()
@click.argument("batch_id")
@lake_opt
@workspace_opt
@config_opt
def forget(
    batch_id: str, lake_path: str | None, workspace: str | None, config_path: str | None
) -> None:
    """Remove BATCH_ID (Delta commits removing its files) so its sources can be ingested again."""
    from personas.lake import Lake

    lk = Lake(Path(lake_path) if lake_path else _cfg(config_path, workspace).lake_dir)
    b = lk.forget(batch_id)
    click.echo(f"forgot batch {batch_id}: {len(b.sources)} source(s) may now be ingested again")


@lake.command("migrate")
@lake_opt
@workspace_opt
@config_opt
def lake_migrate(lake_path: str | None, workspace: str | None, config_path: str | None) -> None:
    """Convert a lake of the earlier layout (Parquet + _manifest/) into Delta tables, in place.

    The data files stay; every old batch becomes one Delta commit per table. Restartable.
    """
    from personas.lake_migrate import migrate

    root = Path(lake_path) if lake_path else _cfg(config_path, workspace).lake_dir
    r = migrate(root)
    pins = ", ".join(f"{t} {v}" for t, v in r.versions.items())
    click.echo(
        f"migrated {r.batches} batch(es), {r.files} file(s), {r.commits} Delta commit(s) "
        f"in {root}; table versions: {pins}"
    )


if __name__ == "__main__":
    main()
