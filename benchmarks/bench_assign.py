"""A refit refresh and an assign refresh in the same run, stage by stage, with peak memory.

    uv run python benchmarks/bench_assign.py --customers 1000000

Synthetic retailer (~20 order lines per customer), ingested once; then a **refit** refresh
(features, discovery, publish) and an **assign** refresh of the same lake one week later
(features, assign with the published model, publish). Prints CPU-seconds (user + system of
this process: steadier than wall time on a shared host, see benchmarks/_machine.py) per stage
and the two ratios the issue asks for:

* ``assign overhead / features = R``: everything the assign refresh does after its features
  (scoring, drift, campaign uplift, profiles, report, cards, audiences), over the features'
  time; target <= 0.25;
* ``refit / assign = Q``: the whole refit refresh over the whole assign refresh.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import time
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

from personas.config import SegmentationConfig
from personas.refresh import Policy, refresh_run


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


@contextmanager
def stage(name: str, table: dict[str, tuple[float, float]]):
    w, c = time.perf_counter(), _cpu()
    yield
    table[name] = (_cpu() - c, time.perf_counter() - w)
    print(f"  {name:<22} CPU {table[name][0]:8.1f} s   wall {table[name][1]:8.1f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--out", default="/tmp/personas-bench-refresh")
    ap.add_argument("--memory-limit", default="2GB")
    a = ap.parse_args()
    os.environ.setdefault("PERSONAS_PII_KEY", "bench-refresh-key")
    from personas.campaigns.uplift import measure_run
    from personas.features.build import build_features
    from personas.ingest.batch import ingest
    from personas.publish.publication import publish
    from personas.synthetic.retailer import generate

    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    ws = out / "ws"
    t: dict[str, tuple[float, float]] = {}
    print(f"{a.customers:,} customers")
    with stage("generate", t):
        generate(out / "raw", customers=a.customers, seed=0)
    files = sorted(p for p in (out / "raw").iterdir() if p.name.endswith((".csv.gz", ".jsonl.gz")))
    with stage("ingest", t):
        ingest(files, "demo", ws / "lake", memory_limit=a.memory_limit)
    seg = SegmentationConfig()
    print("refit refresh")
    with stage("refit: features", t):
        fs = build_features(ws / "lake", None, ws / "features", memory_limit=a.memory_limit)
    with stage("refit: discover", t):
        r = refresh_run(fs.path, ws / "runs", ws / "published", Policy(), seg)
    assert r.mode == "refit", r.reason
    with stage("refit: campaigns", t):
        measure_run(r.run_dir, ws / "lake")
    with stage("refit: publish", t):
        publish(r.run_dir, ws / "published", lake_dir=ws / "lake")
    print("assign refresh")
    later = date.fromisoformat(str(fs.as_of)) + timedelta(days=7)
    with stage("assign: features", t):
        fs2 = build_features(ws / "lake", later, ws / "features", memory_limit=a.memory_limit)
    with stage("assign: assign+drift", t):
        r2 = refresh_run(fs2.path, ws / "runs", ws / "published", Policy(), seg)
    assert r2.mode == "assign", r2.reason
    with stage("assign: campaigns", t):
        measure_run(r2.run_dir, ws / "lake")
    with stage("assign: publish", t):
        publish(r2.run_dir, ws / "published", lake_dir=ws / "lake")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    feats = t["assign: features"][0]
    overhead = sum(v[0] for k, v in t.items() if k.startswith("assign:")) - feats
    refit = sum(v[0] for k, v in t.items() if k.startswith("refit:"))
    assign = sum(v[0] for k, v in t.items() if k.startswith("assign:"))
    print(f"peak memory {peak:,.0f} MB")
    print(f"assign overhead / features = {overhead / feats:.2f}  (CPU-seconds; target <= 0.25)")
    print(f"refit / assign = {refit / assign:.2f}")


if __name__ == "__main__":
    main()
