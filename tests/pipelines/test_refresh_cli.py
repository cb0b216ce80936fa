"""`personas refresh` for a human: one clear line and a non-zero exit when a step fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_refresh_on_an_empty_workspace_says_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "ph")}
    env.pop("PREFECT_LOGGING_LEVEL", None)
    env.pop("PREFECT_API_URL", None)
    r = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "refresh", "-w", str(tmp_path / "ws")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr[-3000:]
    assert lines[0].startswith("error: ") and "no transactions" in lines[0]
    assert "ingest order lines" in lines[0]  # what to do
    assert "Traceback" not in r.stderr and "leaked" not in r.stderr
