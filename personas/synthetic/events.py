"""Behaviour events: sessions, carts, checkouts, e-mail campaigns, tickets, contacts and coupons.

Events carry the engagement side of the personas (e-mail response, browsing, cart abandonment,
support contacts); online orders leave carts and checkouts consistent with the transactions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from personas.schema import EVENT_TYPES
from personas.synthetic.calendar import DAY, Calendar, clock, uniform_days
from personas.synthetic.catalogue import Catalogue
from personas.synthetic.columns import coded, order_ids
from personas.synthetic.planted import CATEGORIES, CHANNELS
from personas.synthetic.sampling import pick, segments

_TICKET_TOPICS = ("delivery", "return", "refund", "damaged_item", "payment", "account")
_EVENT_CHANNELS = ("web", "app", "store", "phone", "email", "sms", "mail")


def draw_events(
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

    # Prospects shop around before a first order, as real browsing does: extra sessions at
    # their persona's pace, on its online channels, viewing its categories and leaving carts.
    # Drawn from a spawned stream so every other customer's events stay as they were.
    blocks += _prospect_browsing(rng, cust, calendar, catalogue, counters)

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


def _prospect_browsing(
    rng: np.random.Generator,
    cust: dict[str, np.ndarray],
    calendar: Calendar,
    catalogue: Catalogue,
    counters: dict[str, int],
) -> list[dict[str, Any]]:
    """Browsing sessions of prospects that reflect their (hidden) persona.

    A prospect browses at their persona's session rate (at least once: shopping around before
    a first order), on its web/app split, views one to three products of its categories per
    session and leaves a cart with its abandonment habit. The stream is
    spawned from ``rng``'s seed, so drawing it does not move the draws of anything else.
    """
    seq = rng.bit_generator.seed_seq
    r = np.random.default_rng(seq.spawn(1)[0]) if seq is not None else rng
    prospect = np.flatnonzero(cust["is_prospect"])
    if prospect.size == 0:
        return []
    end = float(calendar.end_day)
    end_ts = calendar.end_day * DAY - 1
    frm = cust["first_seen"][prospect] / DAY
    years = np.maximum(end - frm, 7.0) / 365.25
    rate = cust["sessions_per_year"][prospect]
    local, _ = segments(r.poisson(rate * years) + 1)
    owner = prospect[local]
    web, app = CHANNELS.index("web"), CHANNELS.index("app")
    mix = np.diff(cust["channel_mix"], axis=1, prepend=0.0)
    p_app = mix[:, app] / (mix[:, app] + mix[:, web])
    channel = np.where(r.random(owner.size) < p_app[owner], app, web)
    days = uniform_days(r.random(owner.size), frm[local], np.full(owner.size, end), calendar)
    ts = np.minimum(clock(r, days, channel, calendar), end_ts - 900)
    session = _take_numbers(counters, "session", owner.size)
    kind = np.where(channel == app, "app_session", "page_view")
    page = _json_props("page", pa.array(np.full(owner.size, "/")))
    out = [_block(owner, ts, kind, channel, session, page)]
    views, rank = segments(r.integers(1, 4, owner.size))
    category = pick(r, cust["category_mix"], owner[views])
    out.append(
        _block(
            owner[views],
            ts[views] + 30 * (rank + 1),
            "product_view",
            channel[views],
            session[views],
            _json_props("category", pa.array(np.array(CATEGORIES)[category])),
        )
    )
    left = r.random(owner.size) < cust["cart_abandon"][owner]
    cat = pick(r, cust["category_mix"], owner[left])
    product = catalogue.offset[cat] + r.integers(0, catalogue.size[cat])
    out.append(
        _block(
            owner[left],
            ts[left] + 600,
            "add_to_cart",
            channel[left],
            session[left],
            _json_props("product_id", catalogue.product_id.take(pa.array(product))),
        )
    )
    return out


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


def _json_props(key: str, values: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(f'{{"{key}": "', values, '"}', "")


def event_table(blocks: list[dict[str, Any]], ids: pa.Array) -> pa.Table:
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


def campaign_block(contacts: dict[str, np.ndarray]) -> dict[str, Any]:
    """The randomised test's campaign_contact events (control arm included) as a block."""
    from personas.synthetic.campaign import contact_block

    b = contact_block(contacts)
    return _block(
        b["owner"], b["ts"], "campaign_contact", _EVENT_CHANNELS.index("email"), -1, b["props"]
    )
