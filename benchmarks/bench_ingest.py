"""Ingestion speed: 20 million order lines from one gzip CSV into a fresh lake.

Run from the repository root::

    uv run python benchmarks/bench_ingest.py                  # 20M lines, ours vs pandas
    uv run python benchmarks/bench_ingest.py --rows 2000000   # a quicker look
    uv run python benchmarks/bench_ingest.py --table events --floor --skip-pandas
        # the synthetic events (gzip JSON lines, ~25 per customer) against read_json's floor

The order lines come from ``personas.synthetic.generate`` (about 20 lines per customer, with the
dirt of real exports: duplicates, guest lines, zero prices, fees, impossible dates, outliers) and
are ingested with the shipped ``demo`` mapping, i.e. with every rule, the duplicate check and the
partitioned write. ``--data duckdb`` makes a similar file with DuckDB instead (faster to make).
The file is cached in the work folder and reused when it exists.

Each contender runs in its own child process; its peak memory is that child's maximum resident
set size as reported by ``os.wait4`` (the whole process, all DuckDB threads included). The
baseline is a plain ``pandas.read_csv`` followed by ``DataFrame.to_parquet`` of the same file:
no rules, no duplicates, no partitions, so it does strictly less work.

Target on the 2-core development machine: >= 1,000,000 rows/s end to end, peak RSS <= 3 GB.

``--table events`` times the behaviour events instead: the generator's ``events.jsonl.gz``
(gzip JSON lines, made with the order lines of the same customers), ingested with the same
mapping; its floor is DuckDB's bare ``read_json -> COPY parquet``. Target (issue 20): ours
within 1.5x of that floor.
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

from _machine import measure, reference_seconds

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=20_000_000, help="order lines (approximate)")
    ap.add_argument("--data", choices=("synthetic", "duckdb"), default="synthetic")
    ap.add_argument(
        "--table",
        choices=("transactions", "events"),
        default="transactions",
        help="which of the generator's files to ingest (events: gzip JSON lines)",
    )
    ap.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "personas-bench-ingest"
    )
    ap.add_argument("--skip-pandas", action="store_true", help="run only our ingest")
    ap.add_argument(
        "--floor",
        action="store_true",
        help="also time DuckDB's bare read_csv -> COPY parquet (no rules, no dedupe)",
    )
    ap.add_argument("--memory-limit", default=None, help="DuckDB memory limit of the ingest")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--repeat", type=int, default=1, help="runs of ours (and of the floor, alternating)"
    )
    ap.add_argument(
        "--child", choices=("ours", "pandas", "floor", "floor-json"), help=argparse.SUPPRESS
    )
    ap.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args)
        return

    args.workdir.mkdir(parents=True, exist_ok=True)
    data = _prepare(args)
    if args.table == "events":
        data = data.with_name("events.jsonl.gz")
        if not data.exists():
            raise SystemExit(f"{data} is missing: --table events needs --data synthetic")
    size = data.stat().st_size
    print(f"input: {data} ({size / 1e6:,.0f} MB gzip)", flush=True)
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; "
        f"host speed: a fixed Python loop takes {reference_seconds():.2f} s",
        flush=True,
    )
    # ours and the floor alternate, so that each pair sees the same host (steal on this
    # shared machine swings from 0% to 30% within minutes); each contender's best is shown
    rounds: list[tuple[dict, dict | None]] = []
    for _ in range(args.repeat):
        r = _run_child(args, "ours", data, args.workdir / "lake")
        floor = "floor-json" if args.table == "events" else "floor"
        f = _run_child(args, floor, data, args.workdir / "floor.parquet") if args.floor else None
        rounds.append((r, f))
    results = [min((r for r, _ in rounds), key=lambda r: r["seconds"])]
    if not args.skip_pandas and args.table == "transactions":
        results.append(_run_child(args, "pandas", data, args.workdir / "pandas.parquet"))
    if args.floor:
        results.append(min((f for _, f in rounds if f), key=lambda f: f["seconds"]))
    print()
    print(
        f"{'contender':<34} {'rows':>12} {'seconds':>9} {'rows/s':>12} {'CPU s':>7} "
        f"{'steal':>6} {'peak RSS':>10}"
    )
    for r in results:
        print(
            f"{r['name']:<34} {r['rows']:>12,} {r['seconds']:>9.1f} "
            f"{r['rows'] / r['seconds']:>12,.0f} {r['cpu']:>7.1f} {r['steal']:>6.0%} "
            f"{r['peak_rss'] / 2**30:>8.2f} GB"
        )
    if args.floor:
        print()
        for i, (r, f) in enumerate(rounds, 1):
            assert f is not None
            print(
                f"round {i}: ours {r['seconds']:.1f} s (steal {r['steal']:.0%}), floor "
                f"{f['seconds']:.1f} s (steal {f['steal']:.0%}): ours / floor "
                f"{r['seconds'] / f['seconds']:.2f}x, in CPU-s {r['cpu'] / f['cpu']:.2f}x; "
                f"1M rows/s needs a floor of "
                f"{r['rows'] / 1e6 / (r['seconds'] / f['seconds']):.1f} s at this ratio"
            )
    if "detail" in results[0]:
        print()
        print("ours:", results[0]["detail"])
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    print(f"host speed at the end: the same loop takes {reference_seconds():.2f} s")


def _prepare(args: argparse.Namespace) -> Path:
    """The gzip CSV of about ``args.rows`` order lines (made once, then reused)."""
    target = args.workdir / f"{args.data}-{args.rows}"
    csv = target / "transactions.csv.gz"
    if csv.exists():
        return csv
    target.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    if args.data == "synthetic":
        try:
            from personas.synthetic.retailer import generate

            print(f"generating {args.rows:,} synthetic order lines ...", flush=True)
            generate(target, customers=max(1, args.rows // 20), seed=0)
        except Exception as e:  # the generator is another module: fall back rather than stop
            print(f"personas.synthetic failed ({type(e).__name__}: {e}); using DuckDB instead")
            shutil.rmtree(target)
            target.mkdir(parents=True)
            _duckdb_file(csv, args.rows)
    else:
        _duckdb_file(csv, args.rows)
    print(f"made {csv} in {time.perf_counter() - t:.0f} s", flush=True)
    return csv


def _duckdb_file(csv: Path, rows: int) -> None:
    """Order lines with canonical column names and some dirt, written by DuckDB."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"""
        COPY (
          SELECT
            CASE WHEN i % 211 = 7 THEN NULL
                 ELSE 'C' || lpad(CAST(hash(i // 20) % 1000000 AS VARCHAR), 8, '0') END
              AS customer_id,
            CASE WHEN i % 97 = 3 THEN 'R' ELSE 'O' END || lpad(CAST(i // 3 AS VARCHAR), 10, '0')
              AS order_id,
            strftime(TIMESTAMP '2023-01-01'
                     + to_seconds(CAST((i // 3) * 63072000 // {rows // 3 + 1} AS BIGINT)),
                     '%Y-%m-%d %H:%M:%S') AS ts,
            CASE WHEN i % 1009 = 11 THEN 'SHIPPING'
                 ELSE ['FAS','HOM','ELE','BEA','KID','SPO','GRO','BOO'][1 + i % 8] || '-'
                      || lpad(CAST(hash(i) % 400 AS VARCHAR), 5, '0') END AS product_id,
            ['fashion','home','electronics','beauty','kids','sports','grocery','books'][1 + i % 8]
              AS category,
            CASE WHEN i % 97 = 3 THEN -1 ELSE 1 + hash(i * 7) % 4 END AS quantity,
            CASE WHEN i % 499 = 5 THEN 0 ELSE round(2 + (hash(i * 13) % 20000) / 100.0, 2) END
              AS unit_price,
            round(quantity * unit_price, 2) AS amount,
            ['web','app','store','phone'][1 + (i // 3) % 4] AS channel,
            0 AS discount,
            'EUR' AS currency
          FROM range({rows}) t(i)
        ) TO '{csv}' (HEADER, COMPRESSION gzip)""")


def _run_child(args: argparse.Namespace, name: str, data: Path, out: Path) -> dict:
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    cmd = [sys.executable, __file__, "--child", name, "--file", str(data), "--out", str(out)]
    if args.memory_limit:
        cmd += ["--memory-limit", args.memory_limit]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = {**os.environ, "PERSONAS_PII_KEY": os.environ.get("PERSONAS_PII_KEY", "bench-key")}
    print(f"running {name} ...", flush=True)
    with measure() as load:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, cwd=REPO)
        assert proc.stdout is not None
        output = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = load.wall
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{name} failed with exit code {proc.returncode}")
    result = json.loads(output.decode().strip().splitlines()[-1])
    result["seconds"] = seconds  # wall time of the whole child, interpreter start included
    result["peak_rss"] = usage.ru_maxrss * 1024  # Linux reports KiB
    result["cpu"] = load.cpu
    result["steal"] = load.steal
    return result


def _child(args: argparse.Namespace) -> None:
    if args.child == "ours":
        from personas.ingest.batch import ingest

        kw = {}
        if args.memory_limit:
            kw["memory_limit"] = args.memory_limit
        if args.threads:
            kw["threads"] = args.threads
        report = ingest([args.file], "demo", args.out, **kw)
        t = report.totals()
        detail = report.summary().splitlines()[0]
        print(
            json.dumps(
                {
                    "name": "personas.ingest.batch (rules, dedupe, lake)",
                    "rows": t["rows_in"],
                    "detail": detail,
                }
            )
        )
    elif args.child == "floor":
        import duckdb

        con = duckdb.connect()
        n = con.execute(
            f"COPY (SELECT * FROM read_csv('{args.file}')) TO '{args.out}' "
            "(FORMAT parquet, COMPRESSION zstd)"
        ).fetchone()[0]
        print(json.dumps({"name": "duckdb read_csv -> parquet (floor)", "rows": n}))
    elif args.child == "floor-json":
        import duckdb

        con = duckdb.connect()
        n = con.execute(
            f"COPY (SELECT * FROM read_json('{args.file}', format = 'newline_delimited')) "
            f"TO '{args.out}' (FORMAT parquet, COMPRESSION zstd)"
        ).fetchone()[0]
        print(json.dumps({"name": "duckdb read_json -> parquet (floor)", "rows": n}))
    else:
        import pandas as pd

        df = pd.read_csv(args.file)
        df.to_parquet(args.out)
        print(json.dumps({"name": "pandas read_csv -> to_parquet", "rows": len(df)}))


if __name__ == "__main__":
    main()
