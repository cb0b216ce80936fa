"""Publish a run: report, cards, audiences, safety scan, history, then the atomic switch.

``publish(run_dir, published_root)`` turns a discovered run folder into what people use:

* ``report.html`` (:mod:`personas.publish.report`), ``cards/<slug>.md`` and
  ``cards/<slug>.html`` (:mod:`personas.publish.cards`) for every persona;
* ``audiences/<slug>.csv`` and ``.parquet`` (:mod:`personas.publish.audiences`) for every
  persona and every published not-profiled group.

Order matters, because a failure must never leave a half-published state visible:

1. validate ``profiles.json`` against the published JSON Schema;
2. write every output into ``<run>/_publishing/`` and run the safety scan
   (:mod:`personas.publish.safety`) over it and over every other file of the run folder (the
   folder ``latest`` will expose);
3. move the outputs into place, append to the run history, mark ``run.json`` "published";
4. only then switch ``published_root/latest`` to the run: a new symlink is created under a
   temporary name and renamed over the old one (``os.replace``, atomic on POSIX), so readers
   see either the old or the new run, never none.

Any exception marks the run "failed" with the error, restores the history and leaves
``latest`` where it was; a killed process leaves at most a ``_publishing/`` folder that the
next attempt deletes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from personas import runs
from personas.diskspace import disk_full, is_disk_full, tree_bytes
from personas.errors import PublishError, SafetyError
from personas.lake import Lake
from personas.lock import DEFAULT_TIMEOUT, WorkspaceLock
from personas.profile.validate import validate_profiles
from personas.publish import cards as cardmod
from personas.publish import report as reportmod
from personas.publish.audiences import write_audiences, write_prospect_audiences
from personas.publish.safety import scan

HISTORY_FILE = "history.json"
_PUBLISHABLE_STATUS = {"discovered", "published", "failed"}


@dataclass
class PublishResult:
    """What a publication wrote; paths are absolute."""

    run_dir: Path
    report: Path
    cards: list[Path]
    audiences: list[Path]
    latest: Path
    history: Path
    seconds: float
    scanned: list[Path] = field(default_factory=list)
    profiles: dict[str, Any] = field(default_factory=dict)


# ---- publish ---------------------------------------------------------------------------------
def publish(
    run_dir: str | Path,
    published_root: str | Path,
    lake_dir: str | Path | None = None,
    history_limit: int = 50,
    lock_timeout: float = DEFAULT_TIMEOUT,
) -> PublishResult:
    """Publish ``run_dir`` and point ``published_root/latest`` at it (see the module docstring).

    Parameters
    ----------
    run_dir : path
        A run folder written by :func:`personas.discover.discover`.
    published_root : path
        Holds ``latest`` (symlink to the published run) and ``history.json``.
    lake_dir : path, optional
        The lake the run was computed from; its manifest gives the report's data lineage.
    history_limit : int
        Number of publications kept in the history (oldest dropped first).
    lock_timeout : float
        Seconds to wait for the workspace lock (``published_root``'s parent folder), which
        ingest and refresh hold too (:mod:`personas.lock`).
    """
    t0 = time.perf_counter()
    run_dir = Path(run_dir).resolve()
    root = Path(published_root)
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    if not runs.is_run(run_dir):
        raise PublishError(f"{run_dir} is not a run folder: {runs.PROFILES} is missing")
    with WorkspaceLock(root.parent, "personas publish", lock_timeout), _lock(root):
        remove_stale_staging(run_dir.parent)
        hist_path = root / HISTORY_FILE
        old_history = hist_path.read_bytes() if hist_path.exists() else None
        # re-publishing the run that is live: a failure must not call the live run "failed"
        live = runs.published_run(root) == run_dir
        try:
            return _publish(run_dir, root, lake_dir, history_limit, t0)
        except BaseException as exc:
            shutil.rmtree(run_dir / runs.STAGING, ignore_errors=True)
            if old_history is None:
                hist_path.unlink(missing_ok=True)
            else:
                runs.atomic_write(hist_path, old_history)
            error = f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(OSError, ValueError):  # never mask the real error
                if live:
                    runs.set_status(run_dir, "published", last_error=error, failed_at=runs.now())
                else:
                    runs.set_status(run_dir, "failed", error=error, failed_at=runs.now())
            if is_disk_full(exc):  # the report, cards and audiences: about the run's size
                raise disk_full(root, tree_bytes([run_dir])) from None
            raise


def remove_stale_staging(runs_root: Path) -> list[Path]:
    """Delete the ``_publishing/`` folders a killed publish left in any run; return them.

    Called with the publication lock held: no other publish can be writing one.
    """
    stale = sorted(runs_root.glob(f"*/{runs.STAGING}")) if runs_root.is_dir() else []
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return stale


def _publish(
    run_dir: Path, root: Path, lake_dir: str | Path | None, history_limit: int, t0: float
) -> PublishResult:
    run = runs.load_run(run_dir)
    status = run.status
    if status not in _PUBLISHABLE_STATUS:
        raise PublishError(
            f"{run_dir.name}: run status is {status!r}; only a finished run "
            f"({', '.join(sorted(_PUBLISHABLE_STATUS))}) can be published"
        )
    profiles = run.profiles
    validate_profiles(profiles)
    published_at = runs.now()
    history = read_history(root)
    entry = reportmod.history_entry(run, published_at=published_at)
    history = [h for h in history if h.get("run_id") != entry["run_id"]] + [entry]
    history = history[-max(1, history_limit) :]
    rows = Lake(lake_dir).lineage() if lake_dir is not None else None

    staging = run_dir / runs.STAGING
    shutil.rmtree(staging, ignore_errors=True)
    (staging / runs.CARDS).mkdir(parents=True)
    (staging / runs.AUDIENCES).mkdir()
    (staging / runs.REPORT).write_text(
        reportmod.render(run, history=history, lineage=rows), encoding="utf-8"
    )
    for p in profiles["personas"]:
        (staging / runs.CARDS / f"{p['slug']}.md").write_text(
            cardmod.render_markdown(profiles, p, run.uplift, run.metrics.get("kpis")),
            encoding="utf-8",
        )
        (staging / runs.CARDS / f"{p['slug']}.html").write_text(
            cardmod.render_html(profiles, p, run.uplift, run.metrics.get("kpis")), encoding="utf-8"
        )
    write_audiences(run.assignments, profiles, staging / runs.AUDIENCES)
    write_prospect_audiences(run.assignments, profiles, staging / runs.PROSPECT_AUDIENCES)

    problems = scan(staging, profiles) + scan(run_dir, profiles, skip=(runs.STAGING,))
    if problems:
        raise SafetyError(
            "refusing to publish; the safety scan found:\n  " + "\n  ".join(problems[:20])
        )
    for name in (runs.REPORT, runs.CARDS, runs.AUDIENCES, runs.PROSPECT_AUDIENCES):
        target = run_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(staging / name, target)
    staging.rmdir()

    runs.atomic_write(
        root / HISTORY_FILE,
        json.dumps({"schema_version": 1, "runs": history}, indent=1, ensure_ascii=False).encode(),
    )
    card_paths = sorted((run_dir / runs.CARDS).iterdir())
    audience_paths = sorted((run_dir / runs.AUDIENCES).iterdir())
    prospect_paths = sorted((run_dir / runs.PROSPECT_AUDIENCES).iterdir())
    runs.set_status(
        run_dir,
        "published",
        published_at=published_at,
        error=None,
        last_error=None,
        failed_at=None,
        outputs={
            "report": runs.REPORT,
            "cards": [f"{runs.CARDS}/{p.name}" for p in card_paths],
            "audiences": [f"{runs.AUDIENCES}/{p.name}" for p in audience_paths],
            "prospect_audiences": [f"{runs.PROSPECT_AUDIENCES}/{p.name}" for p in prospect_paths],
        },
    )
    latest = switch_latest(root, run_dir)
    return PublishResult(
        run_dir,
        run_dir / runs.REPORT,
        card_paths,
        audience_paths,
        latest,
        root / HISTORY_FILE,
        time.perf_counter() - t0,
        sorted(p for p in run_dir.rglob("*") if p.is_file()),
        profiles,
    )


def switch_latest(published_root: Path, run_dir: Path) -> Path:
    """Point ``published_root/latest`` at ``run_dir`` atomically (temp symlink + rename).

    The link is relative when possible, so a workspace can be moved or mounted elsewhere.
    """
    latest = published_root / runs.LATEST
    if latest.exists() and not latest.is_symlink():
        raise PublishError(f"{latest} exists and is not a symlink; move it away to publish")
    try:
        target = os.path.relpath(run_dir, published_root)
    except ValueError:  # different drives (Windows)
        target = str(run_dir)
    tmp = published_root / f".{runs.LATEST}.tmp-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp, target_is_directory=True)
    os.replace(tmp, latest)
    return latest


# ---- history --------------------------------------------------------------------------------
def read_history(published_root: str | Path) -> list[dict[str, Any]]:
    """Published runs, oldest first (empty before the first publication)."""
    p = Path(published_root) / HISTORY_FILE
    if not p.exists():
        return []
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
        runs = d["runs"]
        if not isinstance(runs, list):
            raise TypeError("runs is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        raise PublishError(
            f"{p} is not a valid run history ({exc}); restore it from a "
            "backup or delete it to start a new history"
        ) from exc
    return runs


# ---- helpers ------------------------------------------------------------------------------------
@contextlib.contextmanager
def _lock(root: Path) -> Iterator[None]:
    """One publication at a time per published root (history and ``latest`` are shared)."""
    with open(root / ".publish.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
