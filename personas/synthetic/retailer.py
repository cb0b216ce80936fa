"""Synthetic retailer exports with planted buyer personas: demo data and recovery ground truth.

A real retailer's data never says which persona a customer belongs to, so nothing can check that
the segmentation finds the right groups. This generator plants six personas, draws each customer's
behaviour parameters around their persona's centre (how far around is ``noise``), simulates orders,
returns, web/app/e-mail behaviour and survey answers from those parameters, and writes the raw
exports a retailer would hand over -- gzip CSV and JSON lines, a little dirty -- plus the hidden
labels in ``truth.parquet``. Everything is vectorized numpy, generated in chunks of customers and
compressed on two writer threads meanwhile, so a million customers (about 21 million order lines,
25 million events) take a minute or two and about 1.5 GB of memory.

This module is the orchestration. Beside it is one module per thing drawn: ``planted``
(the ground truth), ``customers``, ``profiles``, ``orders`` (with returns), ``dirt``,
``events`` and ``feedback``, built on the shared ``calendar``, ``catalogue``,
``sampling`` and ``columns``; ``writers`` turns the tables into files.

Examples
--------
>>> from personas.synthetic.retailer import generate
>>> info = generate("/tmp/demo", customers=2_000, seed=0)  # doctest: +SKIP
>>> info.rows["transactions"] > 30_000  # doctest: +SKIP
True
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from personas.synthetic.calendar import Calendar, make_calendar
from personas.synthetic.campaign import plant_campaign, plant_prospects, truth_summary
from personas.synthetic.catalogue import Catalogue, draw_catalogue
from personas.synthetic.columns import numbered
from personas.synthetic.customers import draw_customers
from personas.synthetic.dirt import DIRT_KINDS, inject_dirt
from personas.synthetic.events import campaign_block, draw_events, event_table
from personas.synthetic.feedback import draw_feedback, feedback_table
from personas.synthetic.orders import (
    add_returns,
    draw_lines,
    draw_orders,
    sort_lines,
    transaction_table,
)
from personas.synthetic.planted import CATEGORIES, CHANNELS, PLANTED_PERSONAS, noise_level
from personas.synthetic.profiles import customer_table, draw_profiles
from personas.synthetic.writers import GzipSink, write_tables

GENERATOR_VERSION = "1.3"  # 1.1: prospects browse after their persona; 1.2: the campaign test;
# 1.3: prospects in the campaign test (their own stream: nobody else's data changes)
FILES = {
    "transactions": "transactions.csv.gz",
    "customers": "customers.csv.gz",
    "events": "events.jsonl.gz",
    "feedback": "feedback.csv.gz",
    "truth": "truth.parquet",
    "prospect_truth": "prospect_truth.parquet",
    "meta": "meta.json",
}


@dataclass(frozen=True)
class GeneratedData:
    """What :func:`generate` wrote: file paths, row counts per file and ``meta.json``'s content."""

    out_dir: Path
    paths: dict[str, Path]
    rows: dict[str, int]
    meta: dict[str, Any] = field(repr=False)


def generate(
    out_dir: str | Path,
    customers: int = 10_000,
    seed: int = 0,
    noise: str | float = "clean",
    start: str = "2023-01-01",
    end: str = "2024-12-31",
    dirty: bool = True,
    chunk_customers: int = 100_000,
    progress: Callable[[int, int], None] | None = None,
) -> GeneratedData:
    """Write a retailer's raw exports with planted personas, plus the ground truth.

    Parameters
    ----------
    out_dir : str or Path
        Folder for ``transactions.csv.gz``, ``customers.csv.gz``, ``events.jsonl.gz``,
        ``feedback.csv.gz``, ``truth.parquet`` (planted persona of each customer),
        ``prospect_truth.parquet`` (the hidden persona of each prospect, whose browsing and
        e-mail habits follow it: ground truth for likely personas) and ``meta.json`` (created;
        files overwritten).
    customers : int
        Rows of the customer export; about 3 % are prospects without purchases, the rest are
        planted-persona customers with at least two orders each.
    seed : int
        Same arguments give byte-identical files.
    noise : {"clean", "noisy"} or float in [0, 1]
        Spread of each customer's parameters around the persona centre and pull towards another
        persona. "clean" (0.15) keeps personas well separated, "noisy" (0.45) makes them overlap.
    start, end : str
        Export window (ISO dates, inclusive).
    dirty : bool
        Inject duplicates, missing customer ids, zero prices, non-product lines, impossible dates
        and extreme outliers into the transactions, counted exactly in ``meta["dirt"]``.
    chunk_customers : int
        Customers generated per chunk. Memory grows with it; 100,000 peaks near 1.5 GB in all
        and is also faster than larger chunks (the writer threads overlap more often).
    progress : callable, optional
        Called as ``progress(done, total)`` in customers after each chunk.

    Returns
    -------
    GeneratedData
    """
    level = noise_level(noise)
    if not isinstance(customers, int | np.integer) or customers < 1:
        raise ValueError(f"customers={customers!r} must be a positive integer")
    if chunk_customers < 1:
        raise ValueError(f"chunk_customers={chunk_customers!r} must be >= 1")
    calendar = make_calendar(start, end)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / file for name, file in FILES.items()}
    catalogue = draw_catalogue(np.random.default_rng([seed, 0, 0]))
    rows = dict.fromkeys(("transactions", "customers", "events", "feedback"), 0)
    dirt = dict.fromkeys(DIRT_KINDS, 0)
    sizes = np.zeros(len(PLANTED_PERSONAS), dtype=np.int64)
    participants = np.zeros(len(PLANTED_PERSONAS), dtype=np.int64)
    effect_sum = np.zeros(len(PLANTED_PERSONAS))
    prospects = np.zeros(len(PLANTED_PERSONAS), dtype=np.int64)
    prospect_sum = np.zeros(len(PLANTED_PERSONAS))
    truth: list[pa.Table] = []
    prospect_truth: list[pa.Table] = []
    counters = {"order": 0, "session": 0}
    with ExitStack() as stack:
        sinks = {name: stack.enter_context(GzipSink(paths[name])) for name in rows}
        # Two writer threads (events | the rest) compress chunk i while chunk i + 1 is drawn;
        # waiting for them before handing over the next chunk keeps at most two chunks alive.
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=2))
        pending: list[Future[None]] = []
        for index, first in enumerate(range(0, customers, chunk_customers)):
            n = min(chunk_customers, customers - first)
            rng = np.random.default_rng([seed, 1, index])
            # the campaign test has its own stream (not drawn from ``rng``): planting it moves
            # no other draw, and the prospects' browsing (spawned from ``rng``) none of its
            test_rng = np.random.default_rng([seed, 2, index])
            # ... and so have the prospects in it (their first orders, lines and returns)
            rngs = (rng, test_rng, np.random.default_rng([seed, 3, index]))
            chunk = _chunk(rngs, first, n, level, calendar, catalogue, dirty, counters)
            for name, table in chunk["tables"].items():
                rows[name] += table.num_rows
            for kind, count in chunk["dirt"].items():
                dirt[kind] += count
            sizes += np.bincount(chunk["truth"]["persona"].to_numpy(), minlength=len(sizes))
            participants += chunk["test"]["participants"]
            effect_sum += chunk["test"]["effect_sum"]
            prospects += chunk["prospect_test"]["participants"]
            prospect_sum += chunk["prospect_test"]["effect_sum"]
            truth.append(chunk["truth"])
            prospect_truth.append(chunk["prospect_truth"])
            for job in pending:
                job.result()
            tables = chunk.pop("tables")
            del chunk
            pending = [
                pool.submit(write_tables, sinks, {"events": tables.pop("events")}, first == 0),
                pool.submit(write_tables, sinks, tables, first == 0),
            ]
            del tables
            if progress is not None:
                progress(first + n, customers)
        for job in pending:
            job.result()
    truth_table = pa.concat_tables(truth)
    pq.write_table(truth_table, paths["truth"], compression="zstd")
    rows["truth"] = truth_table.num_rows
    pq.write_table(pa.concat_tables(prospect_truth), paths["prospect_truth"], compression="zstd")
    meta = {
        "generator": "personas.synthetic",
        "version": GENERATOR_VERSION,
        "args": {
            "customers": int(customers),
            "seed": seed,
            "noise": noise,
            "noise_level": level,
            "start": start,
            "end": end,
            "dirty": dirty,
            "chunk_customers": chunk_customers,
        },
        "rows": rows,
        "planted_customers": rows["truth"],
        "prospects": rows["customers"] - rows["truth"],
        "persona_sizes": {p.name: int(s) for p, s in zip(PLANTED_PERSONAS, sizes, strict=True)},
        "personas": [{"id": i, **asdict(p)} for i, p in enumerate(PLANTED_PERSONAS)],
        "categories": list(CATEGORIES),
        "channels": list(CHANNELS),
        "dirt": dirt,
        "campaign_test": truth_summary(participants, effect_sum, prospects, prospect_sum),
        "files": {name: file for name, file in FILES.items() if name != "meta"},
    }
    paths["meta"].write_text(json.dumps(meta, indent=2) + "\n")
    return GeneratedData(out_dir=out, paths=paths, rows=rows, meta=meta)


def _chunk(
    rngs: tuple[np.random.Generator, np.random.Generator, np.random.Generator],
    first: int,
    n: int,
    level: float,
    calendar: Calendar,
    catalogue: Catalogue,
    dirty: bool,
    counters: dict[str, int],
) -> dict[str, Any]:
    """Simulate ``n`` customers numbered from ``first + 1`` and build their export tables.

    Large intermediates are dropped as soon as their table exists: memory, not time, is what
    limits the chunk size. ``rngs``: the main stream, the campaign test's and its prospects'.
    """
    rng, test_rng, prospect_rng = rngs
    cust = draw_customers(rng, n, level, calendar)
    ids = numbered("C", np.arange(first + 1, first + n + 1), 8)
    orders = draw_orders(rng, cust, calendar, counters)
    # the randomised test draws from its own stream, so the rest of the data stays comparable
    orders, test = plant_campaign(test_rng, cust, orders, calendar, counters)
    prospect_test = plant_prospects(prospect_rng, cust, calendar, test["start"], counters)
    sale = draw_lines(rng, cust, orders, catalogue)
    lines = sort_lines(add_returns(rng, orders, sale, calendar))
    sale = {k: sale[k] for k in ("order", "product", "discount")}  # what the events need
    dirt = dict.fromkeys(DIRT_KINDS, 0)
    if dirty:
        lines, dirt = inject_dirt(rng, lines, catalogue, counters)
    lines = _with_prospect_orders(
        prospect_rng, lines, cust, prospect_test["orders"], catalogue, calendar
    )
    transactions = transaction_table(lines, ids, catalogue)
    del lines
    events = draw_events(rng, cust, orders, sale, calendar, catalogue, counters)
    events["blocks"].append(campaign_block(test["contacts"]))
    events["blocks"].append(campaign_block(prospect_test["contacts"]))
    feedback = draw_feedback(rng, cust, orders, events["tickets"], calendar)
    events = event_table(events.pop("blocks"), ids)
    planted = ~cust["is_prospect"]
    names = np.array([p.name for p in PLANTED_PERSONAS])
    truth, prospect_truth = (
        pa.table(
            {
                "customer_id": ids.filter(pa.array(mask)),
                "persona": pa.array(cust["persona"][mask], pa.int64()),
                "persona_name": pa.array(names[cust["persona"][mask]]),
            }
        )
        for mask in (planted, ~planted)
    )
    tables = {
        "transactions": transactions,
        "customers": customer_table(draw_profiles(rng, cust), ids),
        "events": events,
        "feedback": feedback_table(feedback, ids),
    }
    return {
        "tables": tables,
        "dirt": dirt,
        "truth": truth,
        "prospect_truth": prospect_truth,
        "test": test["truth"],
        "prospect_test": prospect_test["truth"],
    }


def _with_prospect_orders(
    rng: np.random.Generator,
    lines: dict[str, np.ndarray],
    cust: dict[str, np.ndarray],
    orders: dict[str, np.ndarray],
    catalogue: Catalogue,
    calendar: Calendar,
) -> dict[str, np.ndarray]:
    """The chunk's order lines plus the prospects' first orders, drawn from their own stream."""
    if orders["owner"].size == 0:
        return lines
    extra = add_returns(rng, orders, draw_lines(rng, cust, orders, catalogue), calendar)
    keys = [k for k in lines if k in extra]
    return sort_lines(
        {k: np.concatenate([lines[k], extra[k].astype(lines[k].dtype)]) for k in keys}
    )
