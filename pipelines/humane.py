"""The command line's manners for unattended runs: the workspace lock, one-line errors.

Kept apart from :mod:`pipelines.cli` (which lists the commands) so each stays short.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

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
