"""Real processes against one workspace: two refreshes started together, an ingest meanwhile.

A real ``prefect server`` serves the flow runs (as in production); each ``personas`` command is
its own process. The workspace lock must serialise them: the lake holds each source once, every
run is complete and published one after the other, and ``published/latest`` is the last one;
a refresh killed while holding the lock leaves the publication as it was. One server, one
workspace: the test-time budget pays for a few CLI processes, not for more data.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from personas import runs
from personas.lake import Lake
from personas.lock import read_holder
from personas.publish.publication import read_history
from personas.synthetic.weekly import generate_weekly
from tests.conftest import REPO


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _workspace(
    tmp_path: Path, source: Path, prefect_server: dict, extra: str = ""
) -> tuple[Path, Path, dict[str, str]]:
    """A small, fast workspace config on ``source`` and the environment of its CLI processes."""
    ws = tmp_path / "ws"
    cfg = tmp_path / "personas.yaml"
    cfg.write_text(
        f"workspace: {ws}\nmapping: demo\nsources: [{source}]\n{extra}"
        "features: {clv: false}\n"
        "segmentation: {algorithms: [kmeans], n_bootstrap: 0, k_range: [3, 5]}\n"
    )
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_server["url"],
        "PREFECT_HOME": str(prefect_server["home"]),
        "PERSONAS_PII_KEY": "k",
        "OMP_NUM_THREADS": "1",  # shared 2-core host: no OpenMP spin-waits under load
    }
    return ws, cfg, env


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory):
    """A real `prefect server start` on a free port (start-up 10-60 s here)."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_API_PORT": str(port),
    }
    env.pop("PREFECT_API_URL", None)
    log = open(home / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "prefect"),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/api"
    t0 = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() - t0 > 240:
            proc.kill()
            pytest.fail(
                f"prefect server did not start: {(home / 'server.log').read_text()[-2000:]}"
            )
        time.sleep(1)
    yield {"url": url, "home": home}
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


@pytest.mark.slow
def test_two_refreshes_and_an_ingest_never_interleave(prefect_server, tmp_path: Path) -> None:
    """Then a refresh killed while it holds the lock (one workspace: its data made once)."""
    raw = tmp_path / "raw"
    info = generate_weekly(
        raw,
        weeks=2,
        change_week=None,
        base_customers=400,
        new_per_week=20,
        history_weeks=30,
        seed=4,
    )
    ws, cfg, env = _workspace(tmp_path, raw / info.weeks[0], prefect_server, "lock_timeout: 1200\n")
    cli = [sys.executable, "-m", "pipelines.cli"]
    refresh = [*cli, "refresh", "-c", str(cfg)]
    a = subprocess.Popen(
        refresh, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    b = subprocess.Popen(
        refresh, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    # once one of them holds the lock, an ingest of the next week joins the queue
    t0 = time.monotonic()
    while not (read_holder(ws) or {}).get("command", "").startswith("personas refresh"):
        assert time.monotonic() - t0 < 300, "no refresh took the lock"
        time.sleep(0.5)
    holder = read_holder(ws)["pid"]
    ing = subprocess.run(
        [*cli, "ingest", str(raw / info.weeks[1]), "-m", "demo", "-c", str(cfg)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert ing.returncode == 0, ing.stderr[-2000:]
    outs = [p.communicate(timeout=1500) for p in (a, b)]
    for p, (_out, err) in zip((a, b), outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert holder in (a.pid, b.pid)

    lake = Lake(ws / "lake")
    batches = lake.batches()
    assert len(batches) == 2  # week 1 once (the second refresh skipped it), week 2 once
    accepted = sum(s.accepted for bt in batches for s in bt.sources if s.table == "transactions")
    assert lake.counts()["transactions"] == accepted  # no row doubled
    expected = sum(
        sum(1 for _ in __import__("gzip").open(raw / w / "transactions.csv.gz", "rt")) - 1
        for w in info.weeks
    )
    assert accepted == expected

    folders = sorted(p for p in (ws / "runs").iterdir() if (p / runs.RUN_INFO).exists())
    assert len(folders) == 2
    infos = [runs.read_json(p / runs.RUN_INFO) for p in folders]
    assert [i["status"] for i in infos] == ["published", "published"]
    assert infos[0]["mode"] == "refit" and infos[1]["mode"] == "assign", infos
    # serialised: the second run started only after the first was published
    assert infos[1]["started_at"] >= infos[0]["published_at"]
    latest = runs.published_run(ws / "published")
    assert latest == folders[1].resolve()
    assert [h["run_id"] for h in read_history(ws / "published")] == [p.name for p in folders]
    assert read_holder(ws) is None  # released
    for out, _ in outs:
        assert json.dumps(out)  # both printed their decision
    assert sum("refit: no published model" in o for o, _ in outs) == 1

    # kill -9 a refresh while it holds the lock: latest stays, the next one takes over and runs
    published = runs.published_run(ws / "published")
    victim = subprocess.Popen(
        [*refresh, "--mode", "refit"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    t0 = time.monotonic()
    while (read_holder(ws) or {}).get("pid") != victim.pid:
        assert time.monotonic() - t0 < 300 and victim.poll() is None
        time.sleep(0.2)
    time.sleep(3)  # somewhere inside the run
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert runs.published_run(ws / "published") == published  # untouched
    again = subprocess.run(refresh, cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"took over the workspace lock of pid {victim.pid}" in again.stderr
    assert runs.published_run(ws / "published") != published
    assert read_holder(ws) is None


RUN_DEPLOYMENT = """
from prefect.deployments import run_deployment
run = run_deployment(name="refresh/personas-refresh", timeout=1200)
print("STATE", run.state.type.value)
"""


@pytest.mark.slow
def test_deploy_on_a_process_pool_and_a_worker_runs_it(prefect_server, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    info = generate_weekly(
        raw, weeks=1, change_week=None, base_customers=300, new_per_week=10, history_weeks=30
    )
    ws, cfg, env = _workspace(tmp_path, raw / info.weeks[0], prefect_server)
    r = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "deploy", "--cron", "0 3 * * 1", "-c", str(cfg)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "work pool 'personas'" in r.stdout
    prefect = str(Path(sys.executable).parent / "prefect")
    worker = subprocess.Popen(
        [prefect, "worker", "start", "--pool", "personas"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        run = subprocess.run(
            [sys.executable, "-c", RUN_DEPLOYMENT],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=1500,
        )
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:  # a loaded host can outlast its graceful shutdown
            worker.kill()
            worker.wait(timeout=60)
    assert "STATE COMPLETED" in run.stdout, run.stdout[-2000:] + run.stderr[-3000:]
    latest = runs.published_run(ws / "published")
    assert latest is not None
    assert runs.read_json(latest / runs.RUN_INFO)["mode"] == "refit"
