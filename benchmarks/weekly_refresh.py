"""A simulated year of weekly refreshes with a planted change (the refresh policy's proof).

    uv run python benchmarks/weekly_refresh.py --weeks 52 --change-week 30 --out /tmp/weekly

Generates weekly exports (``personas.synthetic.weekly``), then replays them: ingest the week,
features as of the Monday after, refresh with ``--mode auto`` (refit_every 365 days, so only
evidence refits), publish. Prints the table docs/drift.md shows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from personas.config import RefreshConfig, SegmentationConfig
from personas.synthetic.simulate import markdown_table, weekly_refreshes
from personas.synthetic.weekly import generate_weekly


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--weeks", type=int, default=52)
    ap.add_argument("--change-week", type=int, default=30)
    ap.add_argument("--base-customers", type=int, default=2000)
    ap.add_argument("--new-per-week", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="/tmp/personas-weekly")
    a = ap.parse_args()
    os.environ.setdefault("PERSONAS_PII_KEY", "weekly-benchmark-key")
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    generate_weekly(
        out / "raw",
        weeks=a.weeks,
        seed=a.seed,
        base_customers=a.base_customers,
        new_per_week=a.new_per_week,
        change_week=a.change_week,
    )
    rows = weekly_refreshes(
        out / "raw",
        out / "ws",
        RefreshConfig(refit_every=365).policy(),
        SegmentationConfig(algorithms=("kmeans",), n_bootstrap=0, k_range=(3, 6)),
    )
    print(markdown_table(rows))
    refits = [r["week"] for r in rows if r["mode"] == "refit"]
    print(f"\nweeks {len(rows)}, refits at weeks {refits}, {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
