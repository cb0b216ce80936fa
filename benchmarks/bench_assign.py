"""A refit refresh and an assign refresh in the same run, stage by stage, with peak memory.

    uv run python benchmarks/bench_assign.py --customers 1000000

Synthetic retailer (~20 order lines per customer), generated and ingested once into
``$PERSONAS_BENCH_DIR/refresh-<N>/lake`` (the lake ``bench_refresh.py`` uses; reused afterwards,
prepared in a child process so its cost never counts); then a **refit** refresh
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
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

from _lake import PREPARE_LAKE

from personas.config import SegmentationConfig
from personas.refresh import Policy, refresh_run

CACHE = Path(os.environ.get("PERSONAS_BENCH_DIR", "/tmp/personas-bench"))


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
    ap.add_argument("--out", default="/tmp/personas-bench-assign", help="the runs' workspace")
    ap.add_argument("--memory-limit", default="2GB")
    a = ap.parse_args()
    os.environ.setdefault("PERSONAS_PII_KEY", "bench-only")
    from personas.campaigns.uplift import measure_run
    from personas.features.build import build_features
    from personas.publish.publication import publish

    base = CACHE / f"refresh-{a.customers}"
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-c",
            PREPARE_LAKE,
            str(base / "raw"),
            str(base / "lake"),
            str(a.customers),
        ],
        check=True,
        cwd=Path(__file__).parent,
    )
    lake = base / "lake"
    print(f"{a.customers:,} customers: lake {lake} ({time.perf_counter() - t0:.0f} s to prepare)")
    ws = Path(a.out)
    shutil.rmtree(ws, ignore_errors=True)
    t: dict[str, tuple[float, float]] = {}
    seg = SegmentationConfig()
    print("refit refresh")
    with stage("refit: features", t):
        fs = build_features(lake, None, ws / "features", memory_limit=a.memory_limit)
    with stage("refit: discover", t):
        r = refresh_run(fs.path, ws / "runs", ws / "published", Policy(), seg)
    assert r.mode == "refit", r.reason
    with stage("refit: campaigns", t):
        measure_run(r.run_dir, lake)
    with stage("refit: publish", t):
        publish(r.run_dir, ws / "published", lake_dir=lake)
    print("assign refresh")
    later = date.fromisoformat(str(fs.as_of)) + timedelta(days=7)
    with stage("assign: features", t):
        fs2 = build_features(lake, later, ws / "features", memory_limit=a.memory_limit)
    # the assign refresh is asked for: the automatic policy may refit a week later (drift, or
    # a lifetime model that became usable adds columns); its reason says what it would do
    with stage("assign: assign+drift", t):
        r2 = refresh_run(fs2.path, ws / "runs", ws / "published", Policy(mode="assign"), seg)
    assert r2.mode == "assign", r2.reason
    print(f"  {r2.reason}")
    with stage("assign: campaigns", t):
        measure_run(r2.run_dir, lake)
    with stage("assign: publish", t):
        publish(r2.run_dir, ws / "published", lake_dir=lake)
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
