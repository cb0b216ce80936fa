"""Synthetic retailer exports with planted buyer personas: demo data and recovery ground truth.

A real retailer's data never says which persona a customer belongs to, so nothing can check that
the segmentation finds the right groups. This generator plants six personas, draws each customer's
behaviour parameters around their persona's centre (how far around is ``noise``), simulates orders,
returns, web/app/e-mail behaviour and survey answers from those parameters, and writes the raw
exports a retailer would hand over -- gzip CSV and JSON lines, a little dirty -- plus the hidden
labels in ``truth.parquet``. Everything is vectorized numpy, generated in chunks of customers and
compressed on two writer threads meanwhile, so a million customers (about 21 million order lines,
25 million events) take a minute or two and about 1.5 GB of memory.

Examples
--------
>>> from personas.synthetic.retailer import generate
>>> info = generate("/tmp/demo", customers=2_000, seed=0)  # doctest: +SKIP
>>> info.rows["transactions"] > 30_000  # doctest: +SKIP
True
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from personas.schema import EVENT_TYPES
from personas.synthetic.calendar import DAY, Calendar, clock, make_calendar, uniform_days
from personas.synthetic.catalogue import Catalogue, draw_catalogue
from personas.synthetic.columns import coded, labels, numbered, order_ids
from personas.synthetic.customers import draw_customers
from personas.synthetic.dirt import DIRT_KINDS, inject_dirt
from personas.synthetic.orders import (
    add_returns,
    draw_lines,
    draw_orders,
    sort_lines,
    transaction_table,
)
from personas.synthetic.planted import CATEGORIES, CHANNELS, PLANTED_PERSONAS, noise_level
from personas.synthetic.profiles import customer_table, draw_profiles
from personas.synthetic.sampling import pick, segments

GENERATOR_VERSION = "1.0"
FILES = {
    "transactions": "transactions.csv.gz",
    "customers": "customers.csv.gz",
    "events": "events.jsonl.gz",
    "feedback": "feedback.csv.gz",
    "truth": "truth.parquet",
    "meta": "meta.json",
}
_GZIP_LEVEL = 1  # writing is the bottleneck; levels 3 and 6 gain only 10-20 % in size
_WRITE_BATCH = 250_000  # rows serialized at a time: bounds the writers' text buffers
# fmt: off
_TICKET_TOPICS = ("delivery", "return", "refund", "damaged_item", "payment", "account")
_CONTACT_CHANNELS = ("phone", "sms", "mail")
_EVENT_CHANNELS = ("web", "app", "store", "phone", "email", "sms", "mail")
_COMMENTS = {
    "nps": (
        (6, ("Too many problems lately.", "Would not recommend.", "Service has gone downhill.",
             "")),
        (8, ("It is fine.", "Okay prices, okay service.", "", "")),
        (10, ("Love shopping here!", "Great service every time.", "Always recommend you.", "")),
    ),
    "csat": (
        (2, ("My issue was not solved.", "Slow answer.", "")),
        (3, ("Took a while but okay.", "")),
        (5, ("Quick and helpful.", "Thanks for the help!", "")),
    ),
    "review": (
        (2, ("Poor quality, sent it back.", "Did not match the description.", "")),
        (3, ("Average product.", "Does the job.", "")),
        (5, ("Excellent quality.", "Exactly as described.", "Great value.", "")),
    ),
}


# fmt: on


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
        ``feedback.csv.gz``, ``truth.parquet`` and ``meta.json`` (created; files overwritten).
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
    truth: list[pa.Table] = []
    counters = {"order": 0, "session": 0}
    with ExitStack() as stack:
        sinks = {name: stack.enter_context(_GzipSink(paths[name])) for name in rows}
        # Two writer threads (events | the rest) compress chunk i while chunk i + 1 is drawn;
        # waiting for them before handing over the next chunk keeps at most two chunks alive.
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=2))
        pending: list[Future[None]] = []
        for index, first in enumerate(range(0, customers, chunk_customers)):
            n = min(chunk_customers, customers - first)
            rng = np.random.default_rng([seed, 1, index])
            chunk = _chunk(rng, first, n, level, calendar, catalogue, dirty, counters)
            for name, table in chunk["tables"].items():
                rows[name] += table.num_rows
            for kind, count in chunk["dirt"].items():
                dirt[kind] += count
            sizes += np.bincount(chunk["truth"]["persona"].to_numpy(), minlength=len(sizes))
            truth.append(chunk["truth"])
            for job in pending:
                job.result()
            tables = chunk.pop("tables")
            del chunk
            pending = [
                pool.submit(_write_tables, sinks, {"events": tables.pop("events")}, first == 0),
                pool.submit(_write_tables, sinks, tables, first == 0),
            ]
            del tables
            if progress is not None:
                progress(first + n, customers)
        for job in pending:
            job.result()
    truth_table = pa.concat_tables(truth)
    pq.write_table(truth_table, paths["truth"], compression="zstd")
    rows["truth"] = truth_table.num_rows
    meta = {
        "generator": "personas.synthetic.retailer",
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
        "files": {name: file for name, file in FILES.items() if name != "meta"},
    }
    paths["meta"].write_text(json.dumps(meta, indent=2) + "\n")
    return GeneratedData(out_dir=out, paths=paths, rows=rows, meta=meta)


# ---------------------------------------------------------------------------------------------
# Customers


def _chunk(
    rng: np.random.Generator,
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
    limits the chunk size.
    """
    cust = draw_customers(rng, n, level, calendar)
    ids = numbered("C", np.arange(first + 1, first + n + 1), 8)
    orders = draw_orders(rng, cust, calendar, counters)
    sale = draw_lines(rng, cust, orders, catalogue)
    lines = sort_lines(add_returns(rng, orders, sale, calendar))
    sale = {k: sale[k] for k in ("order", "product", "discount")}  # what the events need
    dirt = dict.fromkeys(DIRT_KINDS, 0)
    if dirty:
        lines, dirt = inject_dirt(rng, lines, catalogue, counters)
    transactions = transaction_table(lines, ids, catalogue)
    del lines
    events = _draw_events(rng, cust, orders, sale, calendar, catalogue, counters)
    feedback = _draw_feedback(rng, cust, orders, events["tickets"], calendar)
    events = _event_table(events.pop("blocks"), ids)
    planted = ~cust["is_prospect"]
    names = np.array([p.name for p in PLANTED_PERSONAS])
    truth = pa.table(
        {
            "customer_id": ids.filter(pa.array(planted)),
            "persona": pa.array(cust["persona"][planted], pa.int64()),
            "persona_name": pa.array(names[cust["persona"][planted]]),
        }
    )
    tables = {
        "transactions": transactions,
        "customers": customer_table(draw_profiles(rng, cust), ids),
        "events": events,
        "feedback": _feedback_table(feedback, ids),
    }
    return {"tables": tables, "dirt": dirt, "truth": truth}


# ---------------------------------------------------------------------------------------------
# Behaviour events and feedback


def _draw_events(
    rng: np.random.Generator,
    cust: dict[str, np.ndarray],
    orders: dict[str, np.ndarray],
    sale: dict[str, np.ndarray],
    calendar: Calendar,
    catalogue: Catalogue,
    counters: dict[str, int],
) -> dict[str, Any]:
    """Web/app sessions, carts, checkouts, e-mail campaigns, tickets, contacts and coupons.

    Online orders leave an add_to_cart and a checkout in their session; browsing sessions may
    leave an abandoned cart, so cart abandonment is measurable as carts without a checkout.
    Returns the event blocks (column arrays) and the support tickets, which CSAT surveys follow.
    """
    blocks: list[dict[str, Any]] = []
    n = cust["persona"].size
    start, end = float(calendar.start_day), float(calendar.end_day)
    end_ts = calendar.end_day * DAY - 1
    web, app = CHANNELS.index("web"), CHANNELS.index("app")
    phone, email, sms, mail = (_EVENT_CHANNELS.index(c) for c in ("phone", "email", "sms", "mail"))

    # Online orders: cart, then checkout, in one session.
    online = np.flatnonzero((orders["channel"] == web) | (orders["channel"] == app))
    order_session = np.full(orders["ts"].size, -1)
    order_session[online] = _take_numbers(counters, "session", online.size)
    first_line = np.searchsorted(sale["order"], online)
    cart_ts = orders["ts"][online] - rng.integers(60, 1800, online.size)  # may precede start
    product_ids = catalogue.product_id.take(pa.array(sale["product"][first_line]))
    online_ids = order_ids(np.zeros(online.size, bool), orders["number"][online])
    for event, ts, props in (
        ("add_to_cart", cart_ts, _json_props("product_id", product_ids)),
        ("checkout", orders["ts"][online], _json_props("order_id", online_ids)),
    ):
        blocks.append(
            _block(
                orders["owner"][online],
                ts,
                event,
                orders["channel"][online],
                order_session[online],
                props,
            )
        )

    # Browsing sessions on the customer's online channels within the active window (lapsed
    # customers drift away a month after their last order; prospects browse from sign-up).
    frm = np.where(cust["is_prospect"], cust["first_seen"] / DAY, cust["active_from"])
    to = np.where(cust["lapsed"], np.minimum(cust["active_to"] + 30.0, end), end)
    rate = np.where(cust["is_prospect"], 1.5, cust["sessions_per_year"])
    owner, _ = segments(rng.poisson(rate * np.maximum(to - frm, 1.0) / 365.25))
    mix = np.diff(cust["channel_mix"], axis=1, prepend=0.0)
    p_app = mix[:, app] / (mix[:, app] + mix[:, web])
    channel = np.where(rng.random(owner.size) < p_app[owner], app, web)
    days = uniform_days(rng.random(owner.size), frm[owner], to[owner], calendar)
    ts = np.minimum(clock(rng, days, channel, calendar), end_ts - 900)
    session = _take_numbers(counters, "session", owner.size)
    pages = np.array(["/", "/sale", "/new", "/search"])[rng.integers(0, 4, owner.size)]
    blocks.append(
        _block(
            owner,
            ts,
            np.where(channel == app, "app_session", "page_view"),
            channel,
            session,
            _json_props("page", pa.array(pages)),
        )
    )
    category = pick(rng, cust["category_mix"], owner)
    looked = rng.random(owner.size) < 0.2
    blocks.append(
        _block(
            owner[looked],
            ts[looked] + rng.integers(20, 300, looked.sum()),
            "product_view",
            channel[looked],
            session[looked],
            _json_props("category", pa.array(np.array(CATEGORIES)[category[looked]])),
        )
    )
    left = rng.random(owner.size) < cust["cart_abandon"][owner]
    cat = category[left]
    product = catalogue.offset[cat] + rng.integers(0, catalogue.size[cat])
    blocks.append(
        _block(
            owner[left],
            ts[left] + rng.integers(300, 900, left.sum()),
            "add_to_cart",
            channel[left],
            session[left],
            _json_props("product_id", catalogue.product_id.take(pa.array(product))),
        )
    )

    # E-mail campaigns every four weeks; each reaches a subscriber with some chance.
    campaign_day = np.arange(start + 3.0, end, 28.0)
    names = pa.array([_campaign_name(d) for d in campaign_day])
    subscribed = rng.random(n) < np.where(cust["is_prospect"], 0.9, 0.8)
    sent = (
        (rng.random((n, campaign_day.size)) < 0.15)
        & subscribed[:, None]
        & (campaign_day[None, :] >= cust["first_seen"][:, None] / DAY)
    )
    owner, which = np.nonzero(sent)
    sent_ts = (
        (campaign_day[which] * DAY).astype(np.int64) + 8 * 3600 + rng.integers(0, 7200, owner.size)
    )
    campaign = _json_props("campaign", names.take(pa.array(which)))
    opened = rng.random(owner.size) < cust["email_open"][owner]
    open_ts = sent_ts + rng.exponential(8 * 3600, owner.size).astype(np.int64)
    clicked = opened & (rng.random(owner.size) < cust["email_click"][owner])
    click_ts = open_ts + rng.integers(5, 600, owner.size)
    for event, mask, ts in (
        ("email_sent", None, sent_ts),
        ("email_open", opened, open_ts),
        ("email_click", clicked, click_ts),
    ):
        keep = np.ones(owner.size, bool) if mask is None else mask
        blocks.append(
            _block(owner[keep], ts[keep], event, email, -1, campaign.filter(pa.array(keep)))
        )

    # Support tickets follow one of the customer's orders.
    years = (cust["active_to"] - cust["active_from"]) / 365.25
    count = rng.poisson(cust["tickets_per_year"] * np.maximum(years, 0.5))
    owner, _ = segments(np.where(cust["is_prospect"], 0, count))
    starts = np.cumsum(orders["count"]) - orders["count"]
    about = starts[owner] + rng.integers(0, np.maximum(orders["count"][owner], 1))
    ts = orders["ts"][about] + rng.integers(DAY, 14 * DAY, owner.size)
    topics = np.array(_TICKET_TOPICS)[rng.integers(0, len(_TICKET_TOPICS), owner.size)]
    blocks.append(
        _block(
            owner,
            ts,
            "support_ticket",
            rng.choice(np.array([web, phone, email]), owner.size, p=[0.45, 0.35, 0.2]),
            -1,
            _json_props("topic", pa.array(topics)),
        )
    )
    tickets = {"owner": owner[ts <= end_ts], "ts": ts[ts <= end_ts]}

    # Outbound campaign contacts by phone, SMS or letter, after sign-up.
    owner, _ = segments(rng.poisson(0.3, n))
    day = rng.uniform(np.maximum(cust["first_seen"][owner] / DAY, start), end)
    ts = (np.floor(day) * DAY).astype(np.int64) + rng.integers(10 * 3600, 18 * 3600, owner.size)
    blocks.append(
        _block(
            owner,
            ts,
            "campaign_contact",
            rng.choice(np.array([phone, sms, mail]), owner.size, p=[0.3, 0.4, 0.3]),
            -1,
            _json_props(
                "campaign", names.take(pa.array(rng.integers(0, campaign_day.size, owner.size)))
            ),
        )
    )

    # Coupons: a discounted order redeems one with the customer's coupon propensity.
    discounted = np.zeros(orders["ts"].size, dtype=bool)
    discounted[sale["order"][sale["discount"] > 0]] = True
    used = np.flatnonzero(
        discounted & (rng.random(discounted.size) < cust["coupon_rate"][orders["owner"]])
    )
    codes = np.array(["SAVE10", "SAVE20", "WELCOME", "SALE30", "LOYAL15"])
    props = pc.binary_join_element_wise(
        '{"coupon": "',
        pa.array(codes[rng.integers(0, codes.size, used.size)]),
        '", "order_id": "',
        order_ids(np.zeros(used.size, bool), orders["number"][used]),
        '"}',
        "",
    )
    blocks.append(
        _block(
            orders["owner"][used],
            orders["ts"][used],
            "coupon_redeem",
            orders["channel"][used],
            order_session[used],
            props,
        )
    )
    # What happened outside the export window is not in the export.
    inside = [_within(b, calendar.start_day * DAY, end_ts) for b in blocks]
    return {"blocks": inside, "tickets": tickets}


def _block(
    owner: np.ndarray,
    ts: np.ndarray,
    event: str | np.ndarray,
    channel: int | np.ndarray,
    session: int | np.ndarray,
    props: pa.Array,
) -> dict[str, Any]:
    """One kind of events as columns; event types and channels as codes."""
    size = owner.size
    if isinstance(event, str):
        code = np.full(size, EVENT_TYPES.index(event))
    else:
        names, inverse = np.unique(event, return_inverse=True)
        code = np.array([EVENT_TYPES.index(e) for e in names], dtype=np.int64)[inverse]
    return {
        "owner": owner.astype(np.int32),
        "ts": np.asarray(ts, dtype=np.int64),
        "type": code.astype(np.int8),
        "channel": np.broadcast_to(channel, size).astype(np.int8),
        "session": np.broadcast_to(session, size).astype(np.int64),
        "props": props,
    }


def _within(block: dict[str, Any], lo: int, hi: int) -> dict[str, Any]:
    """The events of a block with ``lo <= ts <= hi``."""
    keep = (block["ts"] >= lo) & (block["ts"] <= hi)
    if keep.all():
        return block
    out = {k: v[keep] for k, v in block.items() if k != "props"}
    out["props"] = block["props"].filter(pa.array(keep))
    return out


def _take_numbers(counters: dict[str, int], name: str, size: int) -> np.ndarray:
    """The next ``size`` numbers of a running counter (order or session numbers)."""
    numbers = counters[name] + 1 + np.arange(size)
    counters[name] += size
    return numbers


def _campaign_name(day: float) -> str:
    """Campaign label from its send date: the sale it announces, or a monthly newsletter."""
    date = np.datetime64(int(day), "D").item()
    sales = {
        1: "january_sale",
        3: "spring_sale",
        6: "summer_sale",
        7: "summer_sale",
        11: "black_friday",
        12: "christmas",
    }
    label = sales.get(date.month, "newsletter")
    return f"{label}_{date:%Y_%m}"


def _draw_feedback(
    rng: np.random.Generator,
    cust: dict[str, np.ndarray],
    orders: dict[str, np.ndarray],
    tickets: dict[str, np.ndarray],
    calendar: Calendar,
) -> dict[str, np.ndarray]:
    """NPS surveys of responders, CSAT after support tickets and product reviews after orders.

    Response rates differ by persona, so missing feedback is itself informative, as in reality.
    """
    end_ts = calendar.end_day * DAY - 1
    n = cust["persona"].size
    starts = np.cumsum(orders["count"]) - orders["count"]
    responder = ~cust["is_prospect"] & (rng.random(n) < cust["survey_rate"])
    owner, _ = segments(np.where(responder, 1 + (rng.random(n) < 0.3), 0))
    after = starts[owner] + rng.integers(0, np.maximum(orders["count"][owner], 1))
    nps_ts = orders["ts"][after] + rng.integers(2 * DAY, 20 * DAY, owner.size)
    nps = np.clip(np.round(rng.normal(cust["nps"][owner], 1.2)), 0, 10)
    nps_owner = owner
    answered = rng.random(tickets["owner"].size) < 0.6
    csat_owner = tickets["owner"][answered]
    csat_ts = tickets["ts"][answered] + rng.integers(3600, 2 * DAY, csat_owner.size)
    csat = np.clip(np.round(rng.normal(cust["csat"][csat_owner], 0.7)), 1, 5)
    reviewed = rng.random(orders["ts"].size) < 0.12 * cust["survey_rate"][orders["owner"]]
    review_owner = orders["owner"][reviewed]
    review_ts = orders["ts"][reviewed] + rng.integers(3 * DAY, 20 * DAY, review_owner.size)
    review = np.clip(np.round(rng.normal(cust["csat"][review_owner] + 0.2, 0.9)), 1, 5)
    kind = np.repeat([0, 1, 2], [nps_owner.size, csat_owner.size, review_owner.size])
    score = np.concatenate([nps, csat, review])
    ts = np.concatenate([nps_ts, csat_ts, review_ts])
    keep = ts <= end_ts  # surveys answered after the export window are not in it
    comment = np.full(kind.size, "", dtype=object)
    for k, name in enumerate(("nps", "csat", "review")):
        for lo, (top, texts) in zip(
            (-1, *(t for t, _ in _COMMENTS[name])), _COMMENTS[name], strict=False
        ):
            mask = (kind == k) & (score > lo) & (score <= top)
            comment[mask] = np.array(texts, dtype=object)[rng.integers(0, len(texts), mask.sum())]
    order = np.argsort(ts[keep], kind="stable")
    return {
        "owner": np.concatenate([nps_owner, csat_owner, review_owner])[keep][order],
        "ts": ts[keep][order],
        "kind": kind[keep][order],
        "score": score[keep][order],
        "comment": comment[keep][order],
    }


# ---------------------------------------------------------------------------------------------
# Arrow tables


def _json_props(key: str, values: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(f'{{"{key}": "', values, '"}', "")


def _event_table(blocks: list[dict[str, Any]], ids: pa.Array) -> pa.Table:
    """Events of all blocks in time order; ``session_id`` stays a number until written.

    Consumes ``blocks`` column by column, so the blocks and the table never coexist in full.
    """

    def column(key: str) -> np.ndarray:
        return np.concatenate([b.pop(key) for b in blocks])[order]

    order = np.argsort(np.concatenate([b["ts"] for b in blocks]), kind="stable")
    session = column("session")
    table = {
        "customer_id": coded(ids, column("owner")),
        "ts": pa.array(column("ts"), pa.timestamp("s")),
        "event_type": coded(pa.array(EVENT_TYPES), column("type")),
        "channel": coded(pa.array(_EVENT_CHANNELS), column("channel")),
        "session_id": pa.array(session, pa.int64(), mask=session < 0),
    }
    props = pa.concat_arrays([b.pop("props") for b in blocks])
    table["properties"] = props.take(pa.array(order))
    return pa.table(table)


def _feedback_table(feedback: dict[str, np.ndarray], ids: pa.Array) -> pa.Table:
    kinds = ("nps", "csat", "review")
    comment = feedback["comment"]
    return pa.table(
        {
            "customer_id": ids.take(pa.array(feedback["owner"])),
            "ts": pa.array(feedback["ts"], pa.timestamp("s")),
            "kind": labels(kinds, feedback["kind"]),
            "score": pa.array(feedback["score"].astype(np.int64)),
            "scale_max": pa.array(np.array([10, 5, 5])[feedback["kind"]]),
            "comment": pa.array(comment.astype(str), mask=comment == ""),
        }
    )


# ---------------------------------------------------------------------------------------------
# Writing


class _GzipSink:
    """A gzip file written in pieces, with no name or time in its header (byte-reproducible)."""

    def __init__(self, path: Path) -> None:
        self._raw = open(path, "wb")  # noqa: SIM115 -- closed in __exit__
        self._gz = gzip.GzipFile(
            filename="", mode="wb", fileobj=self._raw, compresslevel=_GZIP_LEVEL, mtime=0
        )

    def __enter__(self) -> _GzipSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self._gz.close()
        self._raw.close()

    def write(self, data: Any) -> None:
        self._gz.write(data)


def _write_tables(sinks: dict[str, _GzipSink], tables: dict[str, pa.Table], header: bool) -> None:
    """Serialize and compress tables of one chunk (on a writer thread: Arrow and zlib drop the GIL).

    Each table is released as soon as it is written, which lowers the peak memory.
    """
    for name in list(tables):
        table = tables.pop(name)
        pieces = _jsonl(table) if name == "events" else _csv(table, header)
        for piece in pieces:
            sinks[name].write(piece)
        del table, pieces


def _csv(table: pa.Table, header: bool) -> Iterator[pa.Buffer]:
    for i, offset in enumerate(range(0, max(table.num_rows, 1), _WRITE_BATCH)):
        sink = pa.BufferOutputStream()
        options = pacsv.WriteOptions(include_header=header and i == 0)
        pacsv.write_csv(table.slice(offset, _WRITE_BATCH), sink, options)
        yield sink.getvalue()


def _jsonl(table: pa.Table) -> Iterator[pa.Buffer]:
    """JSON lines assembled by Arrow string kernels: one object per event, properties as text."""
    for offset in range(0, table.num_rows, _WRITE_BATCH):
        t = table.slice(offset, _WRITE_BATCH)
        number = pc.utf8_lpad(pc.cast(t["session_id"], pa.string()), width=10, padding="0")
        session = pc.if_else(
            pc.is_null(t["session_id"]), "null", pc.binary_join_element_wise('"S', number, '"', "")
        )
        props = pc.replace_substring(t["properties"], '"', '\\"')
        text = {c: pc.cast(t[c], pa.string()) for c in ("customer_id", "event_type", "channel")}
        line = pc.binary_join_element_wise(
            '{"customer_id":"',
            text["customer_id"],
            '","ts":"',
            pc.cast(t["ts"], pa.string()),
            '","event_type":"',
            text["event_type"],
            '","channel":"',
            text["channel"],
            '","session_id":',
            session,
            ',"properties":"',
            props,
            '"}\n',
            "",
        )
        array = line.combine_chunks() if isinstance(line, pa.ChunkedArray) else line
        offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)
        lo, hi = offsets[array.offset], offsets[array.offset + len(array)]
        yield array.buffers()[2][lo:hi]
