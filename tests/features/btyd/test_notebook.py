"""notebooks/02-clv-validation.py runs top to bottom on the real Online Retail log."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_notebook, shared_data

pytestmark = pytest.mark.realdata


def test_clv_validation_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONAS_SHARED_DATA", str(shared_data("uci-online-retail").parent))
    text = run_notebook("02-clv-validation", tmp_path, timeout=300)
    assert "305 daily files" in text
    assert "verdict: sound" in text
    assert "trading clock: NBD total error" in text
