"""notebooks/03-hillstrom-uplift.py runs top to bottom on the real Hillstrom test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, shared_data

pytestmark = pytest.mark.realdata


def test_hillstrom_uplift_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import jupytext
    from nbclient import NotebookClient

    data = shared_data("hillstrom-email").parent
    nb = jupytext.read(REPO / "notebooks" / "03-hillstrom-uplift.py")
    paired = jupytext.read(REPO / "notebooks" / "03-hillstrom-uplift.ipynb")
    assert [c.source for c in paired.cells] == [c.source for c in nb.cells], (
        "the .ipynb is out of step with the .py: run jupytext --sync notebooks/*.py"
    )
    assert not any(c.get("outputs") for c in paired.cells if c.cell_type == "code")
    monkeypatch.setenv("PERSONAS_SHARED_DATA", str(data))
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "visit rates equal the CSV's" in text
    assert "customer-level attributes" in text
    assert "Mens E-Mail" in text and "Womens E-Mail" in text
    assert "Send the tested message" in text
    print(text)
