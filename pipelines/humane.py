"""The command line's manners for unattended runs: the workspace lock, one-line errors.

Kept apart from :mod:`pipelines.cli` (which lists the commands) so each stays short.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click


@contextmanager
def locked(cfg, command: str) -> Iterator[None]:
    """Hold the workspace lock (one writer at a time); say so when a dead holder's is taken."""
    from personas.lock import WorkspaceLock

    with WorkspaceLock(cfg.workspace, command, cfg.lock_timeout) as lk:
        if lk.took_over:
            click.secho(f"note: took over the workspace lock of {lk.took_over}", err=True)
        yield


def quiet_teardown() -> None:
    """Silence what native extensions print while the interpreter shuts down.

    DuckDB's nanobind bindings report "leaked" functions at interpreter exit, after our last
    line; registered first, this handler runs after every other exit handler (the temporary
    Prefect server is stopped by then) and points stderr at /dev/null for the teardown only.
    """
    import atexit

    def mute() -> None:
        sys.stderr.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)

    atexit.register(mute)


@contextmanager
def one_line_errors(step: str, debug: bool) -> Iterator[None]:
    """A failed flow as one line (what, where, what to do); the traceback only with --debug.

    Prefect logs the traceback of the failed task run; without --debug its console logging is
    kept to errors of our own, and the run's log stays on the Prefect server.
    """
    from personas.errors import PersonasError

    try:
        yield
    except PersonasError:
        raise  # _Group prints these as one line
    except Exception as e:
        if debug:
            raise
        first = (str(e).strip().splitlines() or [""])[0]
        click.secho(
            f"error: {step} failed: {type(e).__name__}: {first} "
            "(rerun with --debug for the traceback)",
            fg="red",
            err=True,
        )
        sys.exit(1)


def recent_runs(runs_dir: object, last: int = 5) -> None:
    """The newest run folders with their status and the refresh's reason (personas status)."""
    from pathlib import Path

    from personas import runs

    recent = sorted(p for p in Path(str(runs_dir)).glob("*") if (p / runs.RUN_INFO).exists())
    if recent:
        click.echo("recent runs (mode: reason):")
    for p in recent[-last:]:
        info = runs.read_json(p / runs.RUN_INFO)
        why = info.get("reason") or info.get("error") or ""
        click.echo(f"  {p.name}  {info.get('status', '?'):<10} {why}")


def generate_weeks(out: str, weeks: int, seed: int, customers: int, change_week: int) -> None:
    """``personas generate --weeks``: weekly export folders with a planted change."""
    from personas.synthetic.weekly import generate_weekly

    w = generate_weekly(
        out, weeks=weeks, seed=seed, base_customers=customers, change_week=change_week or None
    )
    click.echo(f"wrote {len(w.weeks)} weekly folders to {out}: {w.weeks[0]} .. {w.weeks[-1]}")
    for name, n in w.rows.items():
        click.echo(f"  {name:<13} {n:>12,} rows")


def report_problems(lake: object, problems: list) -> None:
    from personas.lakecheck import recovery

    click.secho(
        f"  {len(problems)} damaged lake file(s); the counts are not to be trusted:", fg="red"
    )
    for p in problems:
        click.echo(f"  - {p.line()}")
    click.echo("  recover (forget the damaged batch, then ingest its sources again):")
    for cmd in recovery(lake, problems):  # type: ignore[arg-type]
        click.echo(f"    {cmd}")


def parse_versions(text: str | None) -> dict[str, int] | None:
    """``transactions=3,customers=1`` -> {"transactions": 3, "customers": 1}."""
    try:
        return (
            {t.strip(): int(v) for t, v in (p.split("=") for p in text.split(","))}
            if text
            else None
        )
    except ValueError:
        raise click.BadParameter(f"--lake-versions {text!r}: expected table=version,...") from None


def parse_k(k: str | None) -> object:
    if k is None or k == "auto":
        return k
    try:
        return int(k)
    except ValueError:
        raise click.BadParameter(f"--k {k!r}: expected 'auto' or a whole number") from None


def same_demo(meta: Path, customers: int, seed: int) -> bool:
    import json

    args = json.loads(meta.read_text()).get("args", {})
    return args.get("customers") == customers and args.get("seed") == seed


def print_status(cfg: object) -> None:
    """`personas status`: lake tables, the published run, recent runs (exit 1 on damage)."""
    from personas.lake import Lake
    from personas.lakecheck import verify
    from personas.runs import RUN_INFO, published_run, read_json

    lake = Lake(cfg.lake_dir)
    batches = lake.batches()
    click.echo(f"lake {cfg.lake_dir}: {len(batches)} batch(es), fingerprint {lake.fingerprint()}")
    problems = verify(lake)
    versions = lake.snapshot()
    if problems:
        report_problems(lake, problems)
    else:
        for t, n in lake.counts().items():
            v = f"Delta version {versions[t]}" if t in versions else "no table yet"
            click.echo(f"  {t:<13} {n:>12,} rows  ({v})")
        if "quarantine" in versions:
            click.echo(f"  quarantine{'':>23}(Delta version {versions['quarantine']})")
    run = published_run(cfg.published_dir)
    click.echo(f"published: {run or 'nothing yet'}")
    info = Path(run) / RUN_INFO if run else None
    read = read_json(info).get("lake_versions") if info and info.exists() else None
    if read:
        pins = ",".join(f"{t}={v}" for t, v in sorted(read.items()))
        click.echo(f"  read lake versions {pins} (personas features --lake-versions {pins})")
    recent_runs(cfg.runs_dir)
    if problems:
        sys.exit(1)
