"""Shared fixtures: repository paths, real data, the Prefect test harness, small demo data.

Real datasets are read from ``../shared/data`` (never copied into the repository); tests that
need them skip with a reason only when that folder is absent. Tests that need a system
package (Chromium, PostgreSQL) skip locally when it is missing but fail under ``CI=1``, so CI
can never pass by silently skipping them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
IN_CI = bool(os.environ.get("CI"))

# Prefect reads its settings at import: isolate it before any test imports it.
_PREFECT_HOME = tempfile.mkdtemp(prefix="personas-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PERSONAS_PII_KEY", "test-only-key")


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test with a reason when it is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not available: {p} not found (../shared/data is absent)")
    return p


def require_system(path: str, what: str) -> None:
    """Skip when a system package is missing locally; fail in CI, which must install it."""
    if Path(path).exists():
        return
    msg = f"{what} not installed ({path} missing); `make test` installs it when run as root"
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test server for the whole session (start-up takes 10-25 s here)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def demo_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic retailer exports (3,000 customers, clean planted personas), made once."""
    from personas.synthetic.retailer import generate

    out = tmp_path_factory.mktemp("demo") / "raw"
    generate(out, customers=3000, seed=7)
    return out


@pytest.fixture(scope="session")
def demo_files(demo_raw: Path) -> list[Path]:
    return sorted(p for p in demo_raw.iterdir() if p.name.endswith((".csv.gz", ".jsonl.gz")))


@pytest.fixture(scope="session")
def demo_lake(demo_files: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo exports ingested into a lake (shared read-only by tests)."""
    from personas.ingest.batch import ingest

    lake = tmp_path_factory.mktemp("demo_lake") / "lake"
    ingest(demo_files, "demo", lake)
    return lake


@pytest.fixture(scope="session")
def uci_lake(tmp_path_factory: pytest.TempPathFactory):
    """All 305 UCI Online Retail daily files ingested once per session: (lake, report)."""
    from personas.ingest.batch import ingest

    files = shared_data("uci-online-retail", "by-day")
    lake = tmp_path_factory.mktemp("uci") / "lake"
    report = ingest([files], "online_retail", lake)
    return lake, report


@pytest.fixture(scope="session")
def spark():
    """One local[2] Spark session for every Spark test (the spark extra and Java 17 needed)."""
    pytest.importorskip("pyspark", reason="the spark extra is not installed")
    if shutil.which("java") is None:
        pytest.fail("Spark needs Java 17: run scripts/system-deps.sh (Debian openjdk-17)")
    from personas.features.spark import spark_session

    session = spark_session("local[2]", app="personas-tests")
    yield session
    session.stop()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_PREFECT_HOME, ignore_errors=True)


def run_notebook(name: str, cwd: Path, timeout: int = 300) -> str:
    """Execute notebooks/<name>.py (checking its paired .ipynb is in step and unexecuted) and
    return the text it printed; fails on any cell error."""
    import jupytext
    from nbclient import NotebookClient

    nb = jupytext.read(REPO / "notebooks" / f"{name}.py")
    paired = jupytext.read(REPO / "notebooks" / f"{name}.ipynb")
    assert [c.source for c in paired.cells] == [c.source for c in nb.cells], (
        "the .ipynb is out of step with the .py: run jupytext --sync notebooks/*.py"
    )
    assert not any(c.get("outputs") for c in paired.cells if c.cell_type == "code")
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    return "".join(o.get("text", "") for o in outputs)
