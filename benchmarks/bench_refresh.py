"""Refresh benchmark: each stage timed in a fresh process; R = discover+publish / features.

    uv run python benchmarks/bench_refresh.py                      # 1,000,000 customers
    uv run python benchmarks/bench_refresh.py --customers 200000   # R is higher at small sizes
    uv run python benchmarks/bench_refresh.py --code /tmp/base     # another checkout's code

The synthetic retailer of ``--customers`` customers is generated and ingested once into
``$PERSONAS_BENCH_DIR/refresh-<N>/`` (default under /tmp) and reused afterwards. Then the
refresh's stages run one after the other, each in its own interpreter as a scheduled refresh
runs them (so each pays its imports and, for the map, numba's compile or cache load):

- features: ``build_features`` with the CLV models (DuckDB over the lake);
- discover: ``personas.discover.discover`` with the default settings (model selection on its
  fixed-size sample, assignment of everyone, profiles, rules, the map);
- publish: ``personas.publish.publish`` (report, cards, audiences, the switch).

It prints wall time, CPU-seconds (user + system of the child), steal and peak RSS per stage,
then ``discover+publish / features = R`` in CPU-seconds: the issue-20 target is R <= 1.0 at
1M customers (model selection costs the same at any size, so R is higher at small sizes).
``--code DIR`` imports ``personas`` from another checkout (e.g. ``git worktree add /tmp/base
main``) with this environment, to compare versions on the same lake in the same session;
``--rounds 2`` alternates the stages of two code trees.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from _lake import PREPARE_LAKE
from _machine import measure, reference_seconds

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("PERSONAS_BENCH_DIR", "/tmp/personas-bench"))

_PEAK = (
    "\nimport resource as _r, json as _j\n"
    "print(_j.dumps({'peak_kb': _r.getrusage(_r.RUSAGE_SELF).ru_maxrss}))\n"
)

PREPARE = PREPARE_LAKE

FEATURES = r"""
import json, sys
from personas.features.build import build_features
fs = build_features(sys.argv[1], None, sys.argv[2])
print(json.dumps({"rows": fs.customers, "path": str(fs.path)}))
"""

DISCOVER = r"""
import json, sys
from personas.discover import discover
res = discover(sys.argv[1], sys.argv[2], run_id=sys.argv[3])
print(json.dumps({"rows": res.k, "path": str(res.run_dir), "fidelity": res.fidelity,
                  "algorithm": res.algorithm, "stability": res.stability}))
"""

PUBLISH = r"""
import json, sys
from personas.publish.publication import publish
res = publish(sys.argv[1], sys.argv[2], lake_dir=sys.argv[3])
print(json.dumps({"rows": len(res.cards), "path": str(res.report)}))
"""


def _child(code: str, args: list[str], code_dir: Path) -> dict:
    """Run ``code`` in a fresh interpreter importing personas from ``code_dir``."""
    env = {**os.environ, "PYTHONPATH": str(code_dir), "PERSONAS_PII_KEY": "bench-only"}
    with measure() as load:
        out = subprocess.run(
            [sys.executable, "-c", code + _PEAK, *args],
            capture_output=True,
            text=True,
            cwd=code_dir,
            env=env,
        )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    lines = out.stdout.strip().splitlines()
    res = json.loads(lines[-2])
    res.update(
        wall=load.wall,
        cpu=load.cpu,
        steal=load.steal,
        rss_gb=json.loads(lines[-1])["peak_kb"] / 2**20,
    )
    return res


def refresh(lake: Path, out: Path, code_dir: Path, tag: str) -> dict[str, dict]:
    """The three stages in fresh processes; their measurements by stage name."""
    shutil.rmtree(out, ignore_errors=True)  # a run id is used once: start each round afresh
    out.mkdir(parents=True)
    f = _child(FEATURES, [str(lake), str(out / "features")], code_dir)
    print(f"  [{tag}] features  {_fmt(f)}", flush=True)
    d = _child(DISCOVER, [f["path"], str(out / "runs"), tag], code_dir)
    print(f"  [{tag}] discover  {_fmt(d)}  (k={d['rows']}, fidelity {d['fidelity']:.3f})")
    p = _child(PUBLISH, [d["path"], str(out / "published"), str(lake)], code_dir)
    print(f"  [{tag}] publish   {_fmt(p)}", flush=True)
    return {"features": f, "discover": d, "publish": p}


def _fmt(r: dict) -> str:
    return (
        f"wall {r['wall']:7.1f} s  CPU {r['cpu']:7.1f} s  steal {r['steal']:4.0%}  "
        f"peak RSS {r['rss_gb']:.2f} GB"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument(
        "--code", type=Path, action="append", help="checkout(s) to time (default: this one)"
    )
    ap.add_argument("--rounds", type=int, default=1, help="alternating rounds over the checkouts")
    args = ap.parse_args()
    codes = [c.resolve() for c in (args.code or [ROOT])]
    base = CACHE / f"refresh-{args.customers}"
    print(f"host speed: a fixed Python loop takes {reference_seconds():.2f} s", flush=True)
    prep = _child(PREPARE, [str(base / "raw"), str(base / "lake"), str(args.customers)], ROOT)
    print(f"lake {base / 'lake'}: {prep['wall']:.0f} s to prepare (0 when reused)", flush=True)
    results: list[tuple[str, dict[str, dict]]] = []
    for i in range(args.rounds):
        for j, code in enumerate(codes):
            tag = f"{code.name}-{i + 1}" if len(codes) > 1 or args.rounds > 1 else code.name
            print(f"refresh with {code} (round {i + 1})", flush=True)
            results.append((tag, refresh(base / "lake", base / f"out-{j}-{i}", code, tag)))
    print()
    print(f"{'code':<22} {'stage':<9} {'wall s':>8} {'CPU s':>8} {'steal':>6} {'peak RSS':>9}")
    for tag, res in results:
        for stage, r in res.items():
            print(
                f"{tag:<22} {stage:<9} {r['wall']:>8.1f} {r['cpu']:>8.1f} {r['steal']:>6.0%} "
                f"{r['rss_gb']:>7.2f} GB"
            )
    print()
    for tag, res in results:
        top = res["discover"]["cpu"] + res["publish"]["cpu"]
        wall = res["discover"]["wall"] + res["publish"]["wall"]
        peak = max(r["rss_gb"] for r in res.values())
        print(
            f"{tag}: discover+publish / features = {top / res['features']['cpu']:.2f} "
            f"(CPU-s; wall {wall / res['features']['wall']:.2f}), peak RSS {peak:.2f} GB, "
            f"{args.customers:,} customers"
        )
    print(f"host speed at the end: the same loop takes {reference_seconds():.2f} s")


if __name__ == "__main__":
    main()
