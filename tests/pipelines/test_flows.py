"""The whole product through the real Prefect engine: demo exports -> published report.

One refresh on the synthetic retailer must recover the planted personas (the right number of
them, adjusted Rand index >= 0.8), publish a self-contained report, and a second refresh on the
same files must add nothing to the lake and keep every persona id, name and assignment.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from tests.conftest import REPO


@pytest.fixture(scope="module")
def refreshed(prefect_harness, demo_files, tmp_path_factory) -> dict:
    from pipelines.flows import refresh

    ws = tmp_path_factory.mktemp("refresh") / "ws"
    first = refresh(sources=[str(f) for f in demo_files], mapping="demo", workspace=str(ws))
    second = refresh(sources=[str(f) for f in demo_files], mapping="demo", workspace=str(ws))
    return {"ws": ws, "first": first, "second": second}


def test_refresh_recovers_planted_personas(refreshed, demo_raw: Path) -> None:
    run_dir = Path(refreshed["first"]["run_dir"])
    meta = json.loads((demo_raw / "meta.json").read_text())
    profiles = json.loads((run_dir / "profiles.json").read_text())
    planted_k = len(meta["persona_sizes"])
    assert len(profiles["personas"]) == planted_k
    truth = pd.read_parquet(demo_raw / "truth.parquet")
    got = pd.read_parquet(run_dir / "assignments.parquet")
    both = truth.merge(got, on="customer_id", validate="one_to_one")
    assert len(both) == len(truth)  # every planted customer was assigned
    ari = adjusted_rand_score(both["persona"], both["persona_id"])
    assert ari >= 0.8, f"ARI {ari:.3f} against the planted personas"


def test_refresh_publishes_self_contained_report(refreshed) -> None:
    ws: Path = refreshed["ws"]
    latest = ws / "published" / "latest"
    run_dir = Path(refreshed["second"]["run_dir"])
    assert latest.resolve() == run_dir.resolve()
    html = (latest / "report.html").read_text(encoding="utf-8")
    assert "Plotly.newPlot" in html or "plotly-graph-div" in html
    assert html.count("plotly.js v") <= 1  # plotly.js embedded once at most
    # no element loads or links anything outside the file (plotly.js's own source contains
    # URL strings, e.g. map-tile attributions, which are never requested; the browser test
    # checks that with the network blocked)
    from html.parser import HTMLParser

    class Refs(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.found: list[str] = []

        def handle_starttag(self, tag: str, attrs: list) -> None:
            for k, v in attrs:
                if (
                    k in ("src", "href", "action", "data")
                    and v
                    and (v.startswith(("http:", "https:", "//")))
                ):
                    self.found.append(f"<{tag} {k}={v}>")

    parser = Refs()
    parser.feed(html)
    assert not parser.found, parser.found
    assert "url(http" not in html and "@import" not in html  # no remote CSS
    assert (latest / "profiles.json").exists()
    assert list((latest / "cards").glob("*.md"))
    # the campaign step measured the planted test against its hold-out, and the report shows it
    from personas import runs

    assert refreshed["second"]["campaigns"] >= 1
    uplift = runs.load_run(latest).uplift
    assert any(c["causal"] and c["rows"] for c in uplift["campaigns"])
    assert 'id="whatworks"' in html and "What works for whom" in html


def test_second_refresh_adds_nothing_and_keeps_identities(refreshed, demo_files) -> None:
    first, second = refreshed["first"], refreshed["second"]
    assert first["ingest"]["rows_in"] > 0 and first["ingest"]["skipped"] == 0
    assert second["ingest"]["rows_in"] == 0
    assert second["ingest"]["skipped"] == len(demo_files)
    p1 = json.loads((Path(first["run_dir"]) / "profiles.json").read_text())
    p2 = json.loads((Path(second["run_dir"]) / "profiles.json").read_text())
    assert [(p["id"], p["name"], p["size"]) for p in p1["personas"]] == [
        (p["id"], p["name"], p["size"]) for p in p2["personas"]
    ]
    a1 = pd.read_parquet(Path(first["run_dir"]) / "assignments.parquet")
    a2 = pd.read_parquet(Path(second["run_dir"]) / "assignments.parquet")
    pd.testing.assert_frame_equal(a1, a2)  # the lifetime columns too: the BTYD fit is exact
    ident = json.loads((Path(second["run_dir"]) / "identity.json").read_text())
    assert not ident["new"] and not ident["vanished"]
    assert all(m["jaccard"] == 1.0 for m in ident["matched"])


def test_notebook_runs_against_the_published_workspace(refreshed, tmp_path: Path) -> None:
    import jupytext
    from nbclient import NotebookClient

    repo = REPO
    nb = jupytext.read(repo / "notebooks" / "01-explore-personas.py")
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    import os

    old = os.environ.get("PERSONAS_WORKSPACE")
    os.environ["PERSONAS_WORKSPACE"] = str(refreshed["ws"])
    try:
        client.execute()
    finally:
        if old is None:
            os.environ.pop("PERSONAS_WORKSPACE", None)
        else:
            os.environ["PERSONAS_WORKSPACE"] = old
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "ARI (k=3 vs published)" in text


def test_a_configuration_error_is_not_retried(
    prefect_harness, demo_files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing PII key fails the ingest once, not three times with waits between."""
    import asyncio

    from prefect.client.orchestration import get_client

    from personas.errors import MappingError
    from pipelines.flows import ingest_flow

    monkeypatch.delenv("PERSONAS_PII_KEY", raising=False)
    with pytest.raises(MappingError, match="PERSONAS_PII_KEY"):
        ingest_flow([str(f) for f in demo_files], "demo", str(tmp_path / "lake"))

    async def attempts() -> list[int]:
        async with get_client() as client:
            runs = await client.read_task_runs()
        return [
            r.run_count
            for r in runs
            if r.task_key.startswith("ingest") and r.state is not None and r.state.is_failed()
        ]

    assert asyncio.run(attempts())[-1:] == [1]
