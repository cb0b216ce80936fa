"""A Spark standalone cluster on this machine: one master and N workers from the pyspark wheel.

For the tests and benchmarks that must run on a real cluster (separate master, worker and
executor JVMs, tasks shipped over the network to Python workers) without one: ``with
standalone_cluster(workers=2) as c: build_features(..., engine="spark",
spark_master=c.master_url)``. The pyspark wheel has ``bin/spark-class`` but not
``sbin/start-master.sh``, so the daemons are started directly, on 127.0.0.1 and free ports,
each in its own process group. Leaving the block stops them all (SIGTERM, then SIGKILL after a
grace period), executors and their Python workers included: they are started by a worker, in
its process group, so no JVM outlives the block. The driver is the caller's business: stop its
session first, or run it in a process of its own.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from personas.errors import ConfigError

HOST = "127.0.0.1"
MASTER = "org.apache.spark.deploy.master.Master"
WORKER = "org.apache.spark.deploy.worker.Worker"


@dataclass
class Cluster:
    """A running standalone cluster: its master URL, web UI, logs and daemon processes."""

    master_url: str
    ui_url: str
    work_dir: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def state(self) -> dict:
        """The master's JSON status (workers, their cores and memory, applications)."""
        with urllib.request.urlopen(self.ui_url + "/json/", timeout=5) as r:
            return json.loads(r.read().decode("utf-8"))

    def alive_workers(self) -> int:
        return sum(w.get("state") == "ALIVE" for w in self.state().get("workers", []))

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def logs(self) -> str:
        """The tail of every daemon's log, for an error message."""
        out = []
        for f in sorted(self.work_dir.glob("*.log")):
            lines = f.read_text(encoding="utf-8", errors="replace").splitlines()
            out.append(f"--- {f.name}\n" + "\n".join(lines[-15:]))
        return "\n".join(out)


def spark_home() -> Path:
    """The pyspark package folder: a Spark distribution with ``bin/spark-class`` and ``jars/``."""
    try:
        import pyspark
    except ImportError:
        raise ConfigError(
            "a Spark cluster needs PySpark: install the extra (uv sync --extra spark) and Java 17"
        ) from None
    home = Path(pyspark.__file__).parent
    if not (home / "bin" / "spark-class").exists():
        raise ConfigError(f"{home}: no bin/spark-class; is pyspark installed from its wheel?")
    return home


def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it; a race is possible but rare)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextmanager
def standalone_cluster(
    workers: int = 2,
    cores: int = 1,
    memory: str = "1g",
    work_dir: str | Path | None = None,
    timeout: float = 120.0,
) -> Iterator[Cluster]:
    """Start a master and ``workers`` workers (``cores`` cores, ``memory`` each) on
    127.0.0.1; yield when every worker has registered with the master; stop them all on exit.

    ``work_dir`` holds the daemons' logs and the workers' scratch folders (default: a temporary
    folder, removed afterwards). Raises :class:`personas.errors.ConfigError` with the daemons'
    log tails when the cluster is not up within ``timeout`` seconds.
    """
    home = spark_home()
    tmp = None
    if work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="personas-spark-")
        work_dir = tmp.name
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    port, ui = free_port(), free_port()
    cluster = Cluster(f"spark://{HOST}:{port}", f"http://{HOST}:{ui}", work)
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": HOST,
        "SPARK_LOG_DIR": str(work),
        "SPARK_NO_DAEMONIZE": "1",
        # executors start Python workers with this interpreter (it has the model's packages)
        "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable),
    }
    env.pop("SPARK_CONF_DIR", None)
    try:
        args = ["--host", HOST, "--port", str(port), "--webui-port", str(ui)]
        cluster.processes.append(_daemon(home, env, work / "master.log", MASTER, *args))
        _wait(cluster, timeout, lambda: cluster.state() is not None, "the master")
        for i in range(workers):
            wdir = work / f"worker-{i}"
            wdir.mkdir(exist_ok=True)
            args = ["--host", HOST, "--port", str(free_port()), "--webui-port", str(free_port())]
            args += ["--cores", str(cores), "--memory", memory, "--work-dir", str(wdir)]
            cluster.processes.append(
                _daemon(home, env, work / f"worker-{i}.log", WORKER, *args, cluster.master_url)
            )
        _wait(cluster, timeout, lambda: cluster.alive_workers() >= workers, f"{workers} workers")
        yield cluster
    finally:
        stop(cluster)
        if tmp is not None:
            tmp.cleanup()


def stop(cluster: Cluster, grace: float = 15.0) -> None:
    """SIGTERM every daemon's process group (workers first: they stop their executors), then
    SIGKILL whatever is left after ``grace`` seconds."""
    procs = list(reversed(cluster.processes))  # workers, then the master
    for p in procs:
        _signal_group(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in procs:
        with suppress(subprocess.TimeoutExpired):
            p.wait(timeout=max(deadline - time.monotonic(), 0.1))
    for p in procs:  # the group: an executor that ignored the TERM
        _signal_group(p, signal.SIGKILL)
        p.wait()
    for pid in leftovers(cluster.work_dir):  # pyspark's daemon makes a process group of its own
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def leftovers(work_dir: Path) -> list[int]:
    """Processes running in ``work_dir`` (an executor's, or its Python workers', folder is
    inside its worker's), which should be none once the cluster is stopped."""
    work = str(Path(work_dir).resolve())
    found = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            cwd = os.readlink(d / "cwd")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if cwd == work or cwd.startswith(work + os.sep):
            found.append(int(d.name))
    return found


def _daemon(home: Path, env: dict, log: Path, cls: str, *args: str) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [str(home / "bin" / "spark-class"), cls, *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a process group of its own: stopped as a whole
        )


def _signal_group(p: subprocess.Popen, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(p.pid, sig)


def _wait(cluster: Cluster, timeout: float, ready, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [p for p in cluster.processes if p.poll() is not None]
        if dead:
            raise ConfigError(
                f"Spark standalone cluster: a daemon exited with {dead[0].returncode} before "
                f"{what} came up (Java 17 installed? see scripts/system-deps.sh)\n" + cluster.logs()
            )
        try:
            if ready():
                return
        except OSError:  # the web UI is not listening yet
            pass
        time.sleep(0.5)
    raise ConfigError(
        f"Spark standalone cluster: {what} not up within {timeout:.0f} s on this machine\n"
        + cluster.logs()
    )
