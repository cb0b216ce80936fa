"""Run folders for the publishing, report and browser tests, built once per process.

They are made the way production makes them: synthetic retailer exports -> ingest -> features
-> discover (twice, the second against the first, for identities and migration). The exports
are made hostile on purpose: a region value and a country value carry HTML and quotes (they
reach the profiles' attributes verbatim), product categories are named
``<script>alert(1)</script>`` and ``Kids' "toys" & <games>``, and one customer id contains a
double quote, a comma and single quotes.

The builders are cached at module level (not only as pytest fixtures) so that the report,
publish and browser test modules share one build per process: discover with UMAP costs
~40 s here, mostly numba compilation. While iterating on the report only, set
``PERSONAS_TEST_RUNS=/some/dir`` to build once and reuse that folder across pytest runs
(tests copy a run before they modify it, so the folder stays pristine).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

os.environ.setdefault("PERSONAS_PII_KEY", "test-only-key")

BAD_ID = "C\"5,'x'"
SCRIPT = "<script>alert(1)</script>"
QUOTED = 'Kids\' "toys" & <games>'
LINK = '<a href="https://evil.example/">deal</a>'
HOSTILE_REGION = '<img src=x onerror=alert(2)> "O\'Brien" & Sons'
CUSTOMERS = 2500


@cache
def _root() -> Path:
    keep = os.environ.get("PERSONAS_TEST_RUNS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        return Path(keep)
    return Path(tempfile.mkdtemp(prefix="personas-publish-tests-"))


def _reuse(root: Path, *runs: str) -> bool:
    """True when a kept build (PERSONAS_TEST_RUNS) already holds these finished runs."""
    return bool(os.environ.get("PERSONAS_TEST_RUNS")) and all(
        (root / "runs" / r / "map.parquet").exists()
        and (root / "runs" / r / "metrics.json").exists()
        for r in runs
    )


def _hostile_exports(raw: Path) -> None:
    """Rewrite the synthetic exports with hostile category names, attributes and an id."""
    tx = pd.read_csv(raw / "transactions.csv.gz", dtype=str, keep_default_na=False)
    tx["category"] = tx["category"].replace({"books": SCRIPT, "grocery": QUOTED})
    tx["customer_id"] = tx["customer_id"].replace({"C00000005": BAD_ID})
    tx.to_csv(raw / "transactions.csv.gz", index=False)
    cu = pd.read_csv(raw / "customers.csv.gz", dtype=str, keep_default_na=False)
    cu["customer_id"] = cu["customer_id"].replace({"C00000005": BAD_ID})
    # a third of the customers: enough to be shown (values below the minimum size are folded)
    idx = cu.index[cu.index % 3 == 0]
    cu.loc[idx, "region"] = HOSTILE_REGION
    cu.loc[idx, "country"] = SCRIPT
    cu.to_csv(raw / "customers.csv.gz", index=False)
    fb = pd.read_csv(raw / "feedback.csv.gz", dtype=str, keep_default_na=False)
    fb["customer_id"] = fb["customer_id"].replace({"C00000005": BAD_ID})
    fb.to_csv(raw / "feedback.csv.gz", index=False)
    ev = pd.read_json(raw / "events.jsonl.gz", lines=True, dtype=False)
    ev["customer_id"] = ev["customer_id"].replace({"C00000005": BAD_ID})
    ev.to_json(raw / "events.jsonl.gz", orient="records", lines=True)


def _config(seed: int = 0):
    from personas.config import SegmentationConfig

    # a smaller model search than the default keeps the fixture fast; it is still a real one
    return SegmentationConfig(
        k_range=(3, 7), algorithms=("kmeans", "gmm"), n_bootstrap=3, random_state=seed
    )


@cache
def demo_build() -> dict[str, Path]:
    """lake, features, run1 (first run) and run2 (matched to run1) of the hostile demo."""
    from personas.discover import discover
    from personas.features.build import build_features
    from personas.ingest.batch import ingest
    from personas.synthetic.retailer import generate

    root = _root() / "demo"
    if _reuse(root, "run1", "run2"):
        return {
            "root": root,
            "lake": root / "lake",
            "run1": root / "runs" / "run1",
            "run2": root / "runs" / "run2",
        }
    shutil.rmtree(root, ignore_errors=True)
    raw = root / "raw"
    generate(raw, customers=CUSTOMERS, seed=3)
    _hostile_exports(raw)
    files = sorted(p for p in raw.iterdir() if p.name.endswith((".csv.gz", ".jsonl.gz")))
    ingest(files, "demo", root / "lake")
    fs = build_features(root / "lake", None, root / "features")
    r1 = discover(fs.path, root / "runs", config=_config(0), run_id="run1")
    r2 = discover(fs.path, root / "runs", previous_dir=r1.run_dir, config=_config(1), run_id="run2")
    return {"root": root, "lake": root / "lake", "run1": r1.run_dir, "run2": r2.run_dir}


@cache
def transactions_only_build() -> dict[str, Path]:
    """A run from transactions alone (like UCI Online Retail): no NPS, CSAT or engagement."""
    from personas.discover import discover
    from personas.features.build import build_features
    from personas.ingest.batch import ingest
    from personas.synthetic.retailer import generate

    root = _root() / "tx_only"
    if _reuse(root, "run1"):
        return {"root": root, "lake": root / "lake", "run1": root / "runs" / "run1"}
    shutil.rmtree(root, ignore_errors=True)
    raw = root / "raw"
    generate(raw, customers=1500, seed=5)
    ingest([raw / "transactions.csv.gz"], "demo", root / "lake")
    fs = build_features(root / "lake", None, root / "features")
    r = discover(fs.path, root / "runs", config=_config(0), run_id="run1")
    return {"root": root, "lake": root / "lake", "run1": r.run_dir}


def copy_run(src: Path, dst_root: Path, name: str | None = None) -> Path:
    """A private copy of a run folder (tests that publish or corrupt must not share one)."""
    dst = dst_root / (name or src.name)
    shutil.copytree(
        src, dst, ignore=shutil.ignore_patterns("report.html", "cards", "audiences", "_publishing")
    )
    run = json.loads((dst / "run.json").read_text())
    run["status"] = "discovered"
    run.pop("error", None)
    (dst / "run.json").write_text(json.dumps(run))
    return dst


def hostile_profiles(profiles: dict[str, Any]) -> dict[str, Any]:
    """Profiles whose every free-text field carries markup, as a worst case for escaping."""
    p = copy.deepcopy(profiles)
    q = p["personas"][0]
    q["name"] = f'{SCRIPT} "Quoted" & co'
    q["description"] = "</script><script>alert(3)</script> shoppers"
    q["category_mix"][SCRIPT] = 0.05
    q["channel_mix"][QUOTED] = 0.05
    q["channel_mix"][LINK] = 0.05  # plotly would draw a live link from an unescaped <a href>
    q["traits"][0]["text"] = "<img src=x onerror=alert(4)> 2.0x the average"
    q["actions"][0]["because"] = '<a href="javascript:alert(5)">click</a>'
    q["attributes"]["region"] = {HOSTILE_REGION: 0.5, "other or unknown": 0.5}
    q["rules"]["items"] = [
        {
            "conditions": [f"Share of spend: {SCRIPT} over 9%"],
            "customers": q["size"],
            "coverage": 0.5,
            "precision": 0.9,
        }
    ]
    feat = f"cat_share__{SCRIPT}"
    p["features"][feat] = {
        "label": f"Share of spend: {SCRIPT}",
        "group": "category",
        "mean": 0.02,
        "std": 0.05,
        "median": 0.0,
        "used_for_segmentation": True,
        "format": "{:.0%}",
    }
    p["model"]["features"].append(feat)
    for other in p["personas"]:
        other["feature_means"][feat] = 0.02
        other["category_mix"].setdefault(SCRIPT, 0.01)
    q["feature_means"][feat] = 0.2
    return p
