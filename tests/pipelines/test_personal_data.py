"""Acceptance (issue 15): exports full of personal data, with English, Finnish, Swedish and
German headers and one whose headers say nothing, go through ingest (refused until each
personal column is declared), features, discover and publish; then every file of the workspace
(lake, quarantine, features, runs, publication) is read and no planted value is found in clear.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from personas.ingest.mapping import load_mapping
from pipelines.cli import main
from tests.ingest.pii_exports import find_in_clear, mapping_yaml, write_exports


def _mapping(planted, declare: bool) -> str:
    """The demo's order lines, events and feedback, and the five customer exports."""
    demo = yaml.safe_load(Path(load_mapping("demo").path).read_text(encoding="utf-8"))
    ours = yaml.safe_load(mapping_yaml(planted, declare=declare))
    ours["sources"] += [s for s in demo["sources"] if s["name"] != "customers"]
    ours["ignore"] = demo["ignore"]
    return yaml.safe_dump(ours, allow_unicode=True, sort_keys=False)


@pytest.mark.slow
def test_no_personal_value_in_clear_anywhere_in_the_workspace(
    demo_raw: Path, tmp_path: Path
) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    for name in ("transactions.csv.gz", "events.jsonl.gz", "feedback.csv.gz"):
        shutil.copy(demo_raw / name, exports / name)
    cust = pd.read_csv(demo_raw / "customers.csv.gz", dtype=str)
    planted = write_exports(exports, list(cust["customer_id"]), list(cust["first_seen"]))
    assert len(planted.values) > 10_000
    found, _ = find_in_clear(exports, planted.values)  # the scan finds them where they are
    assert {h.split(":")[0] for h in found} == {e.path.name for e in planted.exports}
    ws = tmp_path / "ws"
    runner = CliRunner()
    m = tmp_path / "mapping.yaml"

    # undeclared: refused, one line naming a file and its personal columns, values masked
    m.write_text(_mapping(planted, declare=False), encoding="utf-8")
    r = runner.invoke(main, ["ingest", str(exports), "--mapping", str(m), "-w", str(ws)])
    assert r.exit_code == 2, r.output
    line = r.output.strip()
    assert "Traceback" not in line and len(line.splitlines()) == 1
    first = next(e for e in planted.exports if line.startswith(f"error: {e.path.name}: "))
    assert {c for c in first.personal if f"{c!r} (" in line} == set(first.personal)
    assert not [v for v in planted.values if v in line]
    assert re.search(r"e\.g\. [^ ]*\*", line)
    assert not (ws / "lake" / "transactions").exists()

    # declared after the refusal: everything goes through
    m.write_text(_mapping(planted, declare=True), encoding="utf-8")
    r = runner.invoke(main, ["ingest", str(exports), "--mapping", str(m), "-w", str(ws)])
    assert r.exit_code == 0, r.output
    # a cheap refresh: one algorithm, one bootstrap, a small map (the scan is the point here)
    cfg = tmp_path / "personas.yaml"
    cfg.write_text(
        "features: {clv_holdout: 0}\n"
        "segmentation: {algorithms: [kmeans], n_bootstrap: 1, map_sample: 300}\n"
    )
    for cmd in (["features"], ["discover", "--k", "4"], ["publish"]):
        r = runner.invoke(main, [*cmd, "-w", str(ws), "--config", str(cfg)])
        assert r.exit_code == 0, (cmd, r.output)
    quarantined = pd.read_parquet(ws / "lake" / "quarantine")
    assert (quarantined["table"] == "customers").sum() >= 10  # rows of every export, kept

    hits, scanned = find_in_clear(ws, planted.values)
    by_folder = Counter(
        "/".join(Path(f).parts[: 2 if f.startswith("lake") else 1]) for f in scanned
    )
    print(f"scanned {len(scanned)} files for {len(planted.values):,} planted values: {by_folder}")
    for part in ("lake/customers", "lake/quarantine", "features", "runs", "published"):
        assert by_folder[part] > 0, (part, by_folder)
    assert [f for f in scanned if f.startswith("published/latest/") and f.endswith(".html")]
    assert [f for f in scanned if f.startswith("runs/") and f.endswith(".skops")]
    assert hits == [], hits[:10]
