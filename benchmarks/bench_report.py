"""Benchmark the persona report: file size and time to interactive at 10k and 1M customers.

Run ``uv run python benchmarks/bench_report.py --repeat 5`` (needs Debian's chromium at
/usr/bin/chromium; ~10 minutes here, ~2 of them building the 10k run through the real
pipeline). ``--run-dir`` reuses an existing 10k run folder; ``--measure-only`` re-measures the
pages already in ``benchmarks/results/``. Variants are loaded round-robin (one load of each per
round) so that a change in machine load hits them alike; medians are reported.

What is measured, per variant, in headless Chromium with the network blocked:

* ``size``: bytes of the HTML file;
* ``ready``: ms from navigation start until every figure on the page is drawn (our page
  reports it through ``performance.now()``; for the baselines a poll sees the last figure's
  SVG layer appear);
* ``interactive``: ms until the figures on the first screen are drawn and the page answers
  input (ours then draws the rest in 50 ms slices);
* ``render``: seconds Python takes to write the file.

Variants:

* ``ours``: :func:`personas.publish.report.render` - plotly.js once, figure JSON, map capped at
  :data:`personas.publish.plots.MAP_CAP` dots, radars drawn when their tab opens;
* ``ours-uncapped`` (1M only): the same page with every customer on the map, i.e. what the cap
  buys;
* ``naive``: what a first version usually does - ``fig.to_html(include_plotlyjs=True)`` for
  every figure (plotly.js repeated each time, plotly's default template) and the uncapped map.

The 10k run is built through the pipeline (synthetic retailer -> ingest -> features ->
discover). The 1M run is *constructed* from it, because generating and segmenting a million
customers takes ~15 minutes here and adds nothing to a report benchmark: its profiles.json is
the 10k run's with every count scaled by 100 (shares unchanged), its assignments hold 1,000,000
rows drawn with the personas' shares, and its map is what discovery writes at that scale, a
20,000-dot sample (the 10k map's points resampled with a little jitter); the uncapped variants
get 1,000,000 such dots.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from personas.publish import plots, report
from personas.runs import load_run

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RESULTS = Path(__file__).resolve().parent / "results"


def build_10k(work: Path) -> Path:
    """A 10,000-customer run through the real pipeline."""
    os.environ.setdefault("PERSONAS_PII_KEY", "benchmark-only-key")
    from personas.discover import discover
    from personas.features.build import build_features
    from personas.ingest.batch import ingest
    from personas.synthetic.retailer import generate

    raw = work / "raw"
    generate(raw, customers=10_000, seed=0)
    files = sorted(p for p in raw.iterdir() if p.name.endswith((".csv.gz", ".jsonl.gz")))
    ingest(files, "demo", work / "lake")
    fs = build_features(work / "lake", None, work / "features")
    return discover(fs.path, work / "runs", run_id="run10k").run_dir


def _jitter_map(m: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(m), n)
    span = float(np.ptp(m["x"])) or 1.0
    out = m.iloc[idx].reset_index(drop=True)
    return pd.DataFrame(
        {
            "customer_id": [f"M{i:07d}" for i in range(n)],
            "x": (out["x"] + rng.normal(0, span * 0.004, n)).astype("float32"),
            "y": (out["y"] + rng.normal(0, span * 0.004, n)).astype("float32"),
            "persona_id": out["persona_id"].to_numpy(),
        }
    )


def build_1m(run10k: Path, work: Path, n: int = 1_000_000) -> tuple[Path, pd.DataFrame]:
    """A run folder for n customers constructed from the 10k run (see the module docstring)."""
    run = work / "run1m"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    prof = json.loads((run10k / "profiles.json").read_text())
    f = n / prof["population"]["customers"]
    prof["population"]["customers"] = n
    prof["population"]["profiled"] = round(prof["population"]["profiled"] * f)
    prof["min_persona_size"] = round(prof["min_persona_size"] * f)
    for p in prof["personas"]:
        before = p["size"]
        p["size"] = round(before * f)
        for r in p["rules"]["items"]:
            r["customers"] = round(r["customers"] * f)
        p["description"] = p["description"].replace(f"({before:,})", f"({p['size']:,})")
    for g in prof["groups"]:
        if g.get("size"):
            g["size"] = round(g["size"] * f)
    (run / "profiles.json").write_text(json.dumps(prof))
    ids = [p["id"] for p in prof["personas"]] + [g["id"] for g in prof["groups"] if g.get("size")]
    counts = [p["size"] for p in prof["personas"]] + [
        g["size"] for g in prof["groups"] if g.get("size")
    ]
    pid = np.repeat(ids, counts)
    pid = np.concatenate([pid, np.repeat(ids[0], max(0, n - len(pid)))])[:n]
    names = {p["id"]: p["name"] for p in prof["personas"]}
    names.update({g["id"]: g["name"] for g in prof["groups"]})
    rng = np.random.default_rng(1)
    pd.DataFrame(
        {
            "customer_id": [f"C{i:08d}" for i in range(n)],
            "persona_id": pid,
            "persona_name": [names[x] for x in pid],
            "confidence": rng.uniform(0.3, 1.0, n).round(6),
            "profiled": np.isin(pid, list(names)),
        }
    ).to_parquet(run / "assignments.parquet", index=False)
    m10 = pd.read_parquet(run10k / "map.parquet")
    _jitter_map(m10, plots.MAP_CAP, 2).to_parquet(run / "map.parquet", index=False)
    for name in ("run.json", "identity.json", "metrics.json"):
        if (run10k / name).exists():
            shutil.copy(run10k / name, run / name)
    full = _jitter_map(m10, prof["population"]["profiled"], 3)
    return run, full


def naive_html(run: Path, full_map: pd.DataFrame | None) -> str:
    """The baseline: plotly.js inlined with every figure, default template, uncapped map."""
    import plotly.graph_objects as go
    import plotly.io as pio

    data = load_run(run)
    if full_map is not None:
        data.map = full_map
    figs = report.figures(data, [report.history_entry(data)])
    if data.map is not None:  # every customer, not a sample
        figs["map"] = plots.persona_map(data.map, data.profiles, cap=len(data.map) + 1)
    parts = []
    for fig in figs.values():
        fig = go.Figure(fig)
        fig.update_layout(template=pio.templates["plotly"])
        parts.append(pio.to_html(fig, include_plotlyjs=True, full_html=False))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
        + "\n".join(parts)
        + "</body></html>"
    )


def uncapped_html(run: Path, full_map: pd.DataFrame) -> str:
    """Our page with every customer on the map (isolates the effect of the cap)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-uncapped-"))
    try:
        shutil.copytree(run, tmp / "run")
        full_map.to_parquet(tmp / "run" / "map.parquet", index=False)
        old = plots.MAP_CAP
        plots.MAP_CAP = len(full_map) + 1
        try:
            return report.render(load_run(tmp / "run"))
        finally:
            plots.MAP_CAP = old
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_once(browser: Any, path: Path, ours: bool) -> tuple[float, float, float]:
    """One offline page load: (interactive, ready, load event) in ms from navigation start."""
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.route(
        "**/*", lambda r: r.continue_() if r.request.url.startswith("file://") else r.abort()
    )
    page.goto(path.resolve().as_uri(), timeout=600_000)
    if ours:
        page.wait_for_selector("html[data-report-ready='1']", timeout=600_000)
        st = page.evaluate("window.personasReport")
        inter, ready = st["interactive"], st["ready"]
    else:
        page.wait_for_function(
            """() => { const d = document.querySelectorAll('.plotly-graph-div');
               return d.length > 0
                 && Array.from(d).every(x => x.querySelector('.main-svg')); }""",
            timeout=600_000,
            polling=20,
        )
        inter = ready = page.evaluate("performance.now()")
    load = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
    page.close()
    return inter, ready, load


def measure(browser: Any, pages: list[tuple[str, Path, bool]], repeat: int) -> dict[str, dict]:
    """Median times per page over ``repeat`` rounds.

    The pages are loaded round-robin (one load of each per round) rather than one page
    ``repeat`` times in a row, so a change in machine load hits every variant alike.
    """
    times: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _, _ in pages}
    for _ in range(repeat):
        for name, path, ours in pages:
            times[name].append(load_once(browser, path, ours))
    return {
        name: {
            "interactive_ms": statistics.median(t[0] for t in ts),
            "ready_ms": statistics.median(t[1] for t in ts),
            "load_event_ms": statistics.median(t[2] for t in ts),
        }
        for name, ts in times.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run-dir", type=Path, help="an existing 10k run folder to reuse")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument(
        "--measure-only",
        action="store_true",
        help="re-measure the pages already in benchmarks/results (no rebuild)",
    )
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="bench-report-"))
    out = RESULTS
    out.mkdir(parents=True, exist_ok=True)
    pages: list[tuple[str, str, Path, bool]] = []

    label = (
        f"{args.customers // 1000:,}k"
        if args.customers < 1_000_000
        else f"{args.customers / 1e6:g}M"
    )
    names = ["10k-ours", "10k-naive", f"{label}-ours", f"{label}-ours-uncapped", f"{label}-naive"]
    if args.measure_only:
        pages += [
            (n, "n/a", out / f"{n}.html", n.endswith("ours"))
            for n in names
            if (out / f"{n}.html").exists()
        ]
    else:
        t = time.perf_counter()
        run10k = args.run_dir or build_10k(work)
        print(f"10k run: {run10k} ({time.perf_counter() - t:.0f} s)")
        run1m, full1m = build_1m(run10k, work, args.customers)

    def write(name: str, make: Any) -> Path:
        t0 = time.perf_counter()
        p = out / f"{name}.html"
        p.write_text(make(), encoding="utf-8")
        pages.append((name, f"{time.perf_counter() - t0:.1f}", p, name.endswith("ours")))
        return p

    if not args.measure_only:
        write(names[0], lambda: report.render(load_run(run10k)))
        write(names[1], lambda: naive_html(run10k, None))
        write(names[2], lambda: report.render(load_run(run1m)))
        write(names[3], lambda: uncapped_html(run1m, full1m))
        write(names[4], lambda: naive_html(run1m, full1m))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        med = measure(
            browser,
            [(n, p, ours or n.endswith("uncapped")) for n, _, p, ours in pages],
            args.repeat,
        )
        browser.close()
    rows = [
        {
            "variant": name,
            "size_mb": round(path.stat().st_size / 1e6, 2),
            "render_s": secs,
            **{k: round(v) for k, v in med[name].items()},
        }
        for name, secs, path, _ in pages
    ]
    load = os.getloadavg()
    print(f"\nmachine: {os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f}")
    print(f"{'variant':<24}{'size MB':>9}{'render s':>10}{'interactive ms':>16}{'ready ms':>10}")
    for r in rows:
        print(
            f"{r['variant']:<24}{r['size_mb']:>9}{r['render_s']:>10}"
            f"{r['interactive_ms']:>16}{r['ready_ms']:>10}"
        )
    (out / "bench_report.json").write_text(
        json.dumps({"rows": rows, "loadavg": load, "repeat": args.repeat}, indent=1)
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
