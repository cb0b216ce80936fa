"""The workspace lock with real processes: waiting, the holder named, dead holders taken over.

Each test starts separate Python processes that take the lock through :mod:`personas.lock`
(the same code ingest, refresh and publish use), so the exclusion is the kernel's, not a
thread's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from personas.errors import LockError
from personas.lock import LOCK_FILE, WorkspaceLock, is_held_here, read_holder
from tests.conftest import REPO

HOLD = """
import sys, time
from pathlib import Path
from personas.lock import WorkspaceLock
ws, marker, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
with WorkspaceLock(ws, "holder-test", timeout=60):
    Path(marker).write_text("held")
    time.sleep(seconds)
"""

COUNT = """
import sys, time
from pathlib import Path
from personas.lock import WorkspaceLock
ws, n = sys.argv[1], int(sys.argv[2])
counter = Path(ws) / "counter"
for _ in range(n):
    with WorkspaceLock(ws, "counter-test", timeout=60):
        v = int(counter.read_text()) if counter.exists() else 0
        time.sleep(0.002)  # widen the read-modify-write window
        counter.write_text(str(v + 1))
"""


def _start(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO)


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 30) -> None:
    t0 = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, "holder process exited early"
        assert time.monotonic() - t0 < seconds, f"{path} never appeared"
        time.sleep(0.05)


def test_busy_lock_waits_then_names_its_holder(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    marker = tmp_path / "held"
    holder = _start(HOLD, str(ws), str(marker), "30")
    try:
        _wait_for(marker, holder)
        t0 = time.monotonic()
        with pytest.raises(LockError) as ei, WorkspaceLock(ws, "second", timeout=0.6):
            pass
        waited = time.monotonic() - t0
        msg = str(ei.value)
        assert "\n" not in msg
        assert f"pid {holder.pid}" in msg and "holder-test" in msg and "since" in msg
        assert 0.5 <= waited < 5
    finally:
        holder.kill()
        holder.wait()


def test_dead_holder_is_taken_over_and_said_so(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    marker = tmp_path / "held"
    holder = _start(HOLD, str(ws), str(marker), "60")
    _wait_for(marker, holder)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert read_holder(ws)["pid"] == holder.pid  # its line is left behind
    with WorkspaceLock(ws, "after", timeout=5) as lk:
        assert lk.took_over is not None and f"pid {holder.pid}" in lk.took_over
        assert read_holder(ws)["pid"] == os.getpid()
    assert read_holder(ws) is None  # a clean release empties the file


def test_waiter_gets_the_lock_when_the_holder_finishes(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    marker = tmp_path / "held"
    holder = _start(HOLD, str(ws), str(marker), "1.5")
    _wait_for(marker, holder)
    t0 = time.monotonic()
    with WorkspaceLock(ws, "waiter", timeout=30) as lk:
        assert lk.took_over is None  # released cleanly: nothing taken over
        assert time.monotonic() - t0 > 0.5
    holder.wait()


def test_processes_never_overlap(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    procs = [_start(COUNT, str(ws), "25") for _ in range(3)]
    for p in procs:
        assert p.wait(timeout=120) == 0
    assert int((ws / "counter").read_text()) == 75  # no lost update


def test_reentrant_in_one_process(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    with WorkspaceLock(ws, "outer", timeout=1):
        with WorkspaceLock(ws, "inner", timeout=1):
            assert is_held_here(ws)
        assert is_held_here(ws)  # the outer still holds it
        assert read_holder(ws)["command"] == "outer"
    assert not is_held_here(ws)
    assert (ws / LOCK_FILE).read_text() == ""


@pytest.mark.slow
def test_cli_ingest_waits_for_the_holder_then_fails_or_runs(tmp_path: Path) -> None:
    """`personas ingest` under a held lock: one line naming the holder, or it waits its turn."""
    from personas.lake import Lake
    from personas.synthetic.retailer import generate

    raw = tmp_path / "raw"
    generate(raw, customers=300, seed=1)
    ws = tmp_path / "ws"
    cfg = tmp_path / "p.yaml"
    cfg.write_text(f"workspace: {ws}\nlock_timeout: 0.5\n")
    marker = tmp_path / "held"
    holder = _start(HOLD, str(ws), str(marker), "60")
    cli = [sys.executable, "-m", "pipelines.cli", "ingest", str(raw), "-m", "demo", "-c", str(cfg)]
    env = {**os.environ, "PERSONAS_PII_KEY": "k"}
    try:
        _wait_for(marker, holder)
        r = subprocess.run(cli, cwd=REPO, env=env, capture_output=True, text=True)
        assert r.returncode == 2
        err = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(err) == 1 and f"pid {holder.pid}" in err[0] and "holder-test" in err[0], err
        assert not Lake(ws / "lake").exists()  # nothing written
    finally:
        holder.terminate()
        holder.wait()
    cfg.write_text(f"workspace: {ws}\nlock_timeout: 60\n")
    marker.unlink()
    holder = _start(HOLD, str(ws), str(marker), "8")
    try:
        _wait_for(marker, holder)
        r = subprocess.run(cli, cwd=REPO, env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert holder.poll() is not None  # it could only finish after the holder released
    finally:
        holder.kill()
        holder.wait()
    n = Lake(ws / "lake").counts()["transactions"]
    r = subprocess.run(cli, cwd=REPO, env=env, capture_output=True, text=True)
    assert r.returncode == 0 and Lake(ws / "lake").counts()["transactions"] == n
