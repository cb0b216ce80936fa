"""Features and assignment on a standalone Spark cluster against DuckDB and local pandas.

    nice -n 10 uv run python benchmarks/bench_spark_cluster.py                  # 100,000
    nice -n 10 uv run python benchmarks/bench_spark_cluster.py --customers 20000

The synthetic retailer of ``--customers`` customers is generated and ingested once into
``$PERSONAS_BENCH_DIR/refresh-<N>/`` (shared with bench_refresh.py) and reused. Then, each step
in a fresh interpreter (as the command line runs it):

- DuckDB features (``build_features``), the reference;
- a persona run on them (k-means only, cached in ``spark-run/``: only the model matters here);
- local assignment of everyone (``assign_file``, pandas), the reference;
- a standalone cluster from the pyspark wheel (:mod:`personas.spark_cluster`): a master and
  two workers (1 core, 1 GB each) on 127.0.0.1; on it ``build_features(engine="spark")`` and
  ``assign_file_spark`` (``personas assign --engine spark``), each its own application.

Spark's CPU-seconds are the driver's (the child) plus the cluster's: the executors' time is
read from the daemons' ``/proc`` counters (a worker reaps its executors when the application
ends). The check: every customer and column of the features equal (floats to 1e-9 relative),
every assignment equal to the local one. Prints wall and CPU per step and the ratios
Spark cluster / DuckDB (features) and Spark cluster / local (assign). Exits 1 on a mismatch.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _lake import PREPARE_LAKE
from _machine import measure, reference_seconds

from personas.spark_cluster import Cluster, leftovers, standalone_cluster

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("PERSONAS_BENCH_DIR", "/tmp/personas-bench"))

FEATURES = r"""
import json, sys
from personas.features.build import build_features
master = sys.argv[3] if len(sys.argv) > 3 else None
fs = build_features(sys.argv[1], None, sys.argv[2], engine="spark" if master else "duckdb",
                    spark_master=master)
print(json.dumps({"path": str(fs.path), "rows": fs.customers}))
"""

DISCOVER = r"""
import json, sys
from personas.config import SegmentationConfig
from personas.discover import discover
cfg = SegmentationConfig(algorithms=("kmeans",), n_bootstrap=2, map_sample=2000)
res = discover(sys.argv[1], sys.argv[2], config=cfg, run_id="bench")
print(json.dumps({"path": str(res.run_dir), "rows": res.k}))
"""

ASSIGN = r"""
import json, sys
from personas.assign import assign_file
from personas.assign_spark import assign_file_spark
feats, run, out = sys.argv[1:4]
master = sys.argv[4] if len(sys.argv) > 4 else None
res = assign_file_spark(feats, run, out, master=master) if master else assign_file(feats, run, out)
print(json.dumps({"path": str(res.out), "rows": sum(res.counts.values())}))
"""


def child(code: str, args: list[str]) -> dict:
    """Run ``code`` in a fresh interpreter; its JSON result, wall and CPU-seconds."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PERSONAS_PII_KEY": "bench-only"}
    with measure() as load:
        out = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, env=env
        )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    res = json.loads(out.stdout.strip().splitlines()[-1])
    return res | {"wall": load.wall, "cpu": load.cpu, "steal": load.steal}


def cluster_cpu(cluster: Cluster) -> float:
    """CPU-seconds of the daemons and of the executors they have reaped (``/proc``)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in cluster.pids():
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / tick


def on_cluster(cluster: Cluster, code: str, args: list[str]) -> dict:
    """:func:`child` as a Spark application; its CPU includes the executors'."""
    before = cluster_cpu(cluster)
    res = child(code, args)
    deadline = time.monotonic() + 60
    while leftovers(cluster.work_dir) and time.monotonic() < deadline:
        time.sleep(0.5)  # the workers reap the application's executors
    res["driver_cpu"] = res["cpu"]
    res["cluster_cpu"] = cluster_cpu(cluster) - before
    res["cpu"] += res["cluster_cpu"]
    return res


def compare_features(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """Where two features tables differ (customers, columns, values; floats to 1e-9)."""
    if not a.index.equals(b.index):
        return [f"customers differ: {len(a)} vs {len(b)}"]
    if list(a.columns) != list(b.columns):
        return [f"columns differ: {sorted(set(a.columns) ^ set(b.columns))}"]
    bad = []
    for c in a.columns:
        x, y = a[c], b[c]
        if x.dtype.kind in "fiO" and y.dtype.kind in "fi":  # DuckDB keeps 1.0/0.0 as decimals
            xf, yf = x.astype(float).to_numpy(), y.astype(float).to_numpy()
            ok = np.isclose(xf, yf, rtol=1e-9, atol=1e-12, equal_nan=True)
        else:
            ok = (x.fillna("<na>").astype(str) == y.fillna("<na>").astype(str)).to_numpy()
        if not ok.all():
            bad.append(f"{c}: {int((~ok).sum())} customers differ")
    return bad


def compare_assignments(local: pd.DataFrame, spark: pd.DataFrame) -> list[str]:
    a = local.set_index("customer_id")
    b = spark.set_index("customer_id").reindex(a.index)
    if list(a.columns) != list(b.columns):
        return [f"columns differ: {list(a.columns)} vs {list(b.columns)}"]
    a = a.assign(persona_id=a["persona_id"].astype(str))
    return compare_features(a, b) if b.index.notna().all() else ["customers differ"]


def fmt(r: dict) -> str:
    s = f"wall {r['wall']:7.1f} s  CPU {r['cpu']:7.1f} s  steal {r['steal']:4.0%}"
    if "cluster_cpu" in r:
        s += f"  (driver {r['driver_cpu']:.1f} s + cluster {r['cluster_cpu']:.1f} s)"
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=100_000)
    args = ap.parse_args()
    base = CACHE / f"refresh-{args.customers}"
    lake, out = base / "lake", base / "spark-cluster"
    print(f"host speed: a fixed Python loop takes {reference_seconds():.2f} s", flush=True)
    prep = child(PREPARE_LAKE, [str(base / "raw"), str(lake), str(args.customers)])
    print(f"lake {lake}: {prep['wall']:.0f} s to prepare (0 when reused)", flush=True)
    steps: dict[str, dict] = {}
    steps["duckdb features"] = duck = child(FEATURES, [str(lake), str(out / "duckdb")])
    print(f"  duckdb features      {fmt(duck)}  ({duck['rows']:,} customers)", flush=True)
    run = base / "spark-run" / "bench"
    if not (run / "run.json").exists():
        d = child(DISCOVER, [duck["path"], str(run.parent)])
        print(f"  persona run (once)   {fmt(d)}  (k={d['rows']})", flush=True)
    local_out = out / "local.personas.parquet"
    steps["local assign"] = child(ASSIGN, [duck["path"], str(run), str(local_out)])
    print(f"  local assign         {fmt(steps['local assign'])}", flush=True)
    t = time.perf_counter()
    with standalone_cluster(workers=2, cores=1, memory="1g", work_dir=out / "cluster") as c:
        print(f"cluster {c.master_url}: 2 workers up in {time.perf_counter() - t:.1f} s")
        feats = on_cluster(c, FEATURES, [str(lake), str(out / "spark"), c.master_url])
        steps["spark features"] = feats
        print(f"  spark features       {fmt(feats)}", flush=True)
        spark_out = out / "spark.personas.parquet"
        sa = on_cluster(c, ASSIGN, [feats["path"], str(run), str(spark_out), c.master_url])
        steps["spark assign"] = sa
        print(f"  spark assign         {fmt(sa)}", flush=True)
    assert not leftovers(out / "cluster"), "processes left behind by the cluster"
    from personas.features.build import load_features

    bad = compare_features(load_features(duck["path"]), load_features(feats["path"]))
    print(
        f"features: {duck['rows']:,} customers, every column: "
        + ("EQUAL (floats to 1e-9 relative)" if not bad else "DIFFER: " + "; ".join(bad))
    )
    bad_a = compare_assignments(pd.read_parquet(local_out), pd.read_parquet(spark_out))
    print("assignments: " + ("EQUAL to local" if not bad_a else "DIFFER: " + "; ".join(bad_a)))
    f, d = steps["spark features"], steps["duckdb features"]
    a, la = steps["spark assign"], steps["local assign"]
    print(
        f"spark cluster / duckdb features = {f['cpu'] / d['cpu']:.2f} (CPU-s; wall "
        f"{f['wall'] / d['wall']:.2f}); spark cluster / local assign = "
        f"{a['cpu'] / la['cpu']:.2f} (CPU-s; wall {a['wall'] / la['wall']:.2f}), "
        f"{args.customers:,} customers"
    )
    print(f"host speed at the end: the same loop takes {reference_seconds():.2f} s")
    sys.exit(1 if bad or bad_a else 0)


if __name__ == "__main__":
    main()
