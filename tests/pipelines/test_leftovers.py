"""What a kill -9 leaves behind: runs stuck "running", publish staging, Prefect's server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from personas import runs
from personas.publish.publication import remove_stale_staging
from tests.conftest import REPO


def _status(run_dir: Path) -> str:
    return json.loads((run_dir / runs.RUN_INFO).read_text())["status"]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_run_whose_process_is_gone_is_marked_failed_by_the_next(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    killed = runs.create_run(root)
    info = json.loads((killed / runs.RUN_INFO).read_text())
    assert info["pid"] == os.getpid() and info["host"] and info["pid_started"]
    live = runs.create_run(root)  # this process: still alive, left alone
    other = runs.create_run(root)
    runs.set_status(killed, pid=_dead_pid())
    runs.set_status(other, pid=_dead_pid(), host="another-host")
    assert runs.mark_abandoned(root) == [killed]
    after = json.loads((killed / runs.RUN_INFO).read_text())
    assert after["status"] == "failed" and after["error"].startswith("abandoned: its process")
    assert _status(live) == "running" and _status(other) == "running"
    runs.set_status(live, pid_started=1)  # our pid, but started at another time: reused
    new = runs.create_run(root)  # creating a run checks the others
    assert _status(live) == "failed" and _status(new) == "running"


def test_stale_publish_staging_is_removed(tmp_path: Path) -> None:
    a = runs.create_run(tmp_path / "runs")
    (a / runs.STAGING).mkdir()
    (a / runs.STAGING / "report.html").write_text("half")
    assert remove_stale_staging(tmp_path / "runs") == [a / runs.STAGING]
    assert not (a / runs.STAGING).exists() and (a / runs.RUN_INFO).exists()


def _children(pid: int, word: bytes) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmd = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and word in cmd:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_kill_9_of_a_refresh(demo_files: list[Path], tmp_path: Path) -> None:
    """A real refresh killed during discovery: its server dies, the next refresh cleans up."""
    ws = tmp_path / "ws"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    cmd = [sys.executable, "-m", "pipelines.cli", "refresh", "-w", str(ws), "-m", "demo"]
    files = [a for f in demo_files for a in ("-s", str(f))]
    proc = subprocess.Popen(cmd + files, cwd=REPO, env=env, stderr=subprocess.PIPE)
    server: list[int] = []
    run_dir = None
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and proc.poll() is None:
        server = server or _children(proc.pid, b"uvicorn")
        running = [
            p.parent
            for p in (ws / "runs").glob(f"*/{runs.RUN_INFO}")
            if json.loads(p.read_text() or "{}").get("status") == "running"
        ]
        if server and running:
            run_dir = running[0]
            break
        time.sleep(0.5)
    assert run_dir is not None and server, (
        proc.stderr.read().decode()[-3000:] if proc.poll() else ""
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    gone_by = time.monotonic() + 30
    while any(_alive(p) for p in server) and time.monotonic() < gone_by:
        time.sleep(0.5)
    assert not any(_alive(p) for p in server), "Prefect's temporary server outlived its parent"
    (run_dir / runs.STAGING).mkdir(exist_ok=True)  # as if killed while publishing
    res = subprocess.run(
        [*cmd[:-2]], cwd=REPO, env=env, capture_output=True, text=True, timeout=1500
    )
    assert res.returncode == 0, res.stderr[-3000:]
    killed = json.loads((run_dir / runs.RUN_INFO).read_text())
    assert killed["status"] == "failed" and "abandoned" in killed["error"]
    assert not list((ws / "runs").glob(f"*/{runs.STAGING}"))
    assert runs.published_run(ws / "published") not in (None, run_dir)
