"""One writer at a time per workspace: ingest, refresh and publish's switch never interleave.

Why a lock of our own on top of the lake's: a refresh reads the lake, writes features, a run
folder and then moves ``published/latest``; an ingest landing in the middle would make the
published run describe a lake state nobody computed, and two refreshes would race on the
identity matching and the history. So every writer holds ``<workspace>/.personas.lock``.

How: an advisory ``flock`` on the lock file (released by the kernel when the holder dies, so a
killed run never blocks the next one forever) plus a JSON line in it naming the holder (PID,
host, command, start time) for humans and for the message a waiting caller gets. A caller
waits up to ``timeout`` seconds, then fails with one line naming the holder. A holder that
died without releasing leaves its line behind: the next caller takes the lock over and says so
(:attr:`WorkspaceLock.took_over`).

The lock is re-entrant within a process (a refresh that ingests, then publishes, holds it once):
a nested acquisition of the same workspace by the same process is counted, not re-locked.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from personas.errors import LockError

LOCK_FILE = ".personas.lock"
DEFAULT_TIMEOUT = 3600.0
POLL_SECONDS = 0.2

log = logging.getLogger(__name__)
_held: dict[Path, tuple[IO[str], int]] = {}  # resolved lock path -> (open file, depth)
_guard = threading.Lock()


def holder_line(h: dict[str, Any]) -> str:
    """``pid 123 on host (personas refresh) since 2026-12-07T18:00:00+00:00``."""
    return (
        f"pid {h.get('pid', '?')} on {h.get('host', '?')} "
        f"({h.get('command', '?')}) since {h.get('started_at', '?')}"
    )


def read_holder(workspace: str | Path) -> dict[str, Any] | None:
    """Who holds (or, if it died, last held) the lock of ``workspace``; None when free."""
    p = Path(workspace) / LOCK_FILE
    try:
        text = p.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return {"pid": "?", "host": "?", "command": f"unreadable lock file {p}"}


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, belongs to someone else
        return True
    return True


@dataclass
class WorkspaceLock:
    """``with WorkspaceLock(ws, "personas refresh", timeout=600) as lk: ...``.

    Parameters
    ----------
    workspace : path
        The workspace folder (created if needed); the lock file is ``<workspace>/.personas.lock``.
    command : str
        What the holder is doing, shown to anyone who waits (default: this process's argv).
    timeout : float
        Seconds to wait for a busy lock before :class:`~personas.errors.LockError`.

    Attributes
    ----------
    took_over : str or None
        Set when the previous holder had died without releasing: who it was.
    waited : float
        Seconds spent waiting for the lock.
    """

    workspace: str | Path
    command: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    took_over: str | None = field(default=None, init=False)
    waited: float = field(default=0.0, init=False)

    @property
    def path(self) -> Path:
        return Path(self.workspace) / LOCK_FILE

    def __enter__(self) -> WorkspaceLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        Path(self.workspace).mkdir(parents=True, exist_ok=True)
        key = self.path.resolve()
        with _guard:
            if key in _held:
                fh, depth = _held[key]
                _held[key] = (fh, depth + 1)
                return
        fh = open(key, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        t0 = time.monotonic()
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                self.waited = time.monotonic() - t0
                if self.waited >= self.timeout:
                    fh.close()
                    h = read_holder(self.workspace)
                    who = holder_line(h) if h else "another process"
                    raise LockError(
                        f"workspace {self.workspace} is locked by {who}; waited "
                        f"{self.waited:.0f} s: wait for it to finish or raise lock_timeout "
                        f"(a dead holder's lock is taken over automatically)"
                    ) from None
                time.sleep(min(POLL_SECONDS, max(self.timeout - self.waited, 0.01)))
        fh.seek(0)
        old = fh.read().strip()
        if old:  # the holder died (a clean release empties the file)
            try:
                prev = json.loads(old)
            except ValueError:
                prev = {"command": "unreadable lock file"}
            self.took_over = holder_line(prev)
            log.warning("took over the workspace lock of %s: it is gone", self.took_over)
        fh.seek(0)
        fh.truncate()
        fh.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "command": self.command or " ".join(Path(a).name for a in sys.argv[:3]),
                    "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            )
            + "\n"
        )
        fh.flush()
        os.fsync(fh.fileno())
        with _guard:
            _held[key] = (fh, 1)

    def release(self) -> None:
        key = self.path.resolve()
        with _guard:
            if key not in _held:
                return
            fh, depth = _held[key]
            if depth > 1:
                _held[key] = (fh, depth - 1)
                return
            del _held[key]
        try:
            fh.seek(0)
            fh.truncate()
            fh.flush()
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()


def is_held_here(workspace: str | Path) -> bool:
    """Whether this process holds the lock of ``workspace`` (re-entrant use)."""
    with _guard:
        return (Path(workspace) / LOCK_FILE).resolve() in _held
