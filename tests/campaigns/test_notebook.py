"""notebooks/03-hillstrom-uplift.py runs top to bottom on the real Hillstrom test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_notebook, shared_data

pytestmark = pytest.mark.realdata


def test_hillstrom_uplift_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONAS_SHARED_DATA", str(shared_data("hillstrom-email").parent))
    text = run_notebook("03-hillstrom-uplift", tmp_path, timeout=600)
    assert "visit rates equal the CSV's" in text
    assert "customer-level attributes" in text
    assert "Mens E-Mail" in text and "Womens E-Mail" in text
    assert "Send the tested message" in text
    print(text)
