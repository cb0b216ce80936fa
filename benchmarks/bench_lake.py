"""The Delta lake against the earlier layout (Parquet + _manifest/), and Spark against DuckDB.

Run from the repository root::

    uv run --extra spark python benchmarks/bench_lake.py                      # 1M customers
    uv run --extra spark python benchmarks/bench_lake.py --customers 100000   # a quicker look

Measured in one run, each contender in its own child process, CPU-seconds of that child
(``os.wait4``: all its threads; Spark's JVM is a grandchild and is counted too, as the
children's time of the Python driver):

1. ingest of the synthetic retailer (``personas.synthetic.generate``, ``demo`` mapping) into
   a fresh lake: this release (Delta commits) against the release before (commit ef461c1,
   taken with ``git archive``; it must be in the repository's history);
2. features (DuckDB) over each of the two lakes;
3. the writer: the accepted transactions written as a partitioned Delta table by our pyarrow
   writer (``parquet_options``) + delta-rs ``AddAction`` commit, against
   ``deltalake.write_deltalake`` of the same Arrow table;
4. features on Spark ``local[2]`` against DuckDB, over the Delta lake (``--skip-spark`` to
   leave it out).

Target: Delta ingest and features within 10% of the earlier layout's CPU-seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OLD_COMMIT = "ef461c1"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "personas-bench-lake"
    )
    ap.add_argument("--skip-spark", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--args", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child, json.loads(args.args))
        return
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    raw = work / f"raw-{args.customers}"
    if not raw.exists():
        from personas.synthetic.retailer import generate

        generate(raw, customers=args.customers, seed=7)
    files = sorted(str(p) for p in raw.iterdir() if p.name.endswith((".csv.gz", ".jsonl.gz")))
    old_src = work / "old-release"
    if not old_src.exists():
        old_src.mkdir()
        tar = subprocess.run(
            ["git", "archive", OLD_COMMIT, "personas"], cwd=REPO, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(old_src)], input=tar, check=True)
    results: dict[str, float] = {}
    for name, src in (("old", old_src), ("delta", REPO)):
        lake = work / f"lake-{name}"
        shutil.rmtree(lake, ignore_errors=True)
        results[f"ingest_{name}"] = _run("ingest", {"files": files, "lake": str(lake)}, src)
        results[f"features_{name}"] = _run(
            "features", {"lake": str(lake), "out": str(work / f"features-{name}")}, src
        )
    results["writer_ours"] = _run("writer_ours", {"lake": str(work / "lake-delta")}, REPO)
    results["writer_delta_rs"] = _run("writer_delta_rs", {"lake": str(work / "lake-delta")}, REPO)
    if not args.skip_spark:
        results["features_spark"] = _run(
            "spark", {"lake": str(work / "lake-delta"), "out": str(work / "features-spark")}, REPO
        )
    print(json.dumps(results, indent=1))
    r = results
    print(f"customers {args.customers:,}  (CPU-seconds of each child)")
    print(f"ingest    Delta / earlier layout : {r['ingest_delta'] / r['ingest_old']:.2f}")
    print(f"features  Delta / earlier layout : {r['features_delta'] / r['features_old']:.2f}")
    print(f"writer    write_deltalake / ours : {r['writer_delta_rs'] / r['writer_ours']:.2f}")
    if "features_spark" in r:
        print(f"features  Spark local[2] / DuckDB: {r['features_spark'] / r['features_delta']:.2f}")


def _run(what: str, params: dict, src: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONDONTWRITEBYTECODE": "1"}
    env.setdefault("PERSONAS_PII_KEY", "bench-only-key")
    cmd = [sys.executable, __file__, "--child", what, "--args", json.dumps(params)]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=src, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{what} failed (status {status})")
    cpu = usage.ru_utime + usage.ru_stime
    print(f"{what:<16} {src.name:<14} wall {time.perf_counter() - t:7.1f} s  CPU {cpu:7.1f} s")
    return cpu


def _child(what: str, p: dict) -> None:
    if what == "ingest":
        from personas.ingest.batch import ingest

        ingest(p["files"], "demo", p["lake"])
    elif what == "features":
        from personas.features.build import build_features

        build_features(p["lake"], None, p["out"])
    elif what == "spark":
        from personas.features.build import build_features

        build_features(p["lake"], None, p["out"], engine="spark", spark_master="local[2]")
        # the JVM is a child of this process: end it and wait for it, so that its CPU counts
        from pyspark import SparkContext

        proc = SparkContext._gateway.proc
        SparkContext._active_spark_context.stop()
        proc.stdin.close()
        proc.wait(timeout=120)
    elif what in ("writer_ours", "writer_delta_rs"):
        _writer(what, Path(p["lake"]))


def _writer(what: str, lake: Path) -> None:
    """The lake's transactions written again as a Delta table, by one writer or the other."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from deltalake import write_deltalake

    from personas.ingest.write import parquet_options
    from personas.lake import Lake
    from personas.schema import delta_schema

    files = Lake(lake).files("transactions")
    data = pa.concat_tables(pq.read_table(f) for f in files)
    out = lake.parent / f"writer-{what}"
    shutil.rmtree(out, ignore_errors=True)
    t = time.process_time()
    if what == "writer_delta_rs":
        ts = data["ts"]
        data = data.append_column("year", pc.cast(pc.year(ts), pa.int32()))
        data = data.append_column("month", pc.cast(pc.month(ts), pa.int32()))
        write_deltalake(str(out), data, partition_by=["year", "month"])
    else:
        from deltalake.transaction import create_table_with_add_actions

        from personas.lake_delta import add_action

        rels = []
        months = pc.add(pc.multiply(pc.year(data["ts"]), 100), pc.month(data["ts"]))
        for m in pc.unique(months).to_pylist():
            part = data.filter(pc.equal(months, m))
            rel = f"transactions/year={m // 100}/month={m % 100}/part-0.parquet"
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(part, path, row_group_size=122_880, **parquet_options(part.schema))
            rels.append(rel)
        actions = [add_action(out, r) for r in rels]
        create_table_with_add_actions(
            str(out / "transactions"),
            delta_schema("transactions"),
            actions,
            partition_by=["year", "month"],
        )
    print(f"  {what}: {data.num_rows:,} rows, {time.process_time() - t:.1f} CPU-s in process")


if __name__ == "__main__":
    main()
