"""A randomised campaign test with a 20 % hold-out and planted, persona-dependent uplift.

Five weeks before the export ends, every planted customer known by then is randomised: 20 %
into the control arm (no message), the rest receive the message. Each customer has two potential
outcomes for "an order within 14 days": without the message, whatever their natural orders
give; with it, an extra order with the persona's ``add`` probability, and their natural orders in
the window cancelled with its ``remove`` probability (a message that puts people off). Both
draws are made for everyone, so the true effect in the sample -- the mean of (with - without)
per persona -- is known exactly and written to ``meta.json``; the export only shows each
customer's outcome under the arm they got, as real data would.

Prospects known by then are randomised into the same test (same 20 % hold-out, own random
stream, :func:`plant_prospects`): they have no orders, so without the message nobody buys, and
with it a prospect places a first order with their hidden persona's ``PROSPECT_EFFECTS``
probability. Their orders get numbers of their own (``PROSPECT_ORDER_BASE`` up) and no shop
events, so planting them changes no other customer's data. A prospect who bought is a
first-time buyer in the export; the measurement places them by *likely* persona.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from personas.synthetic.calendar import DAY, Calendar
from personas.synthetic.planted import PLANTED_PERSONAS

NAME = "planted_test"
VARIANT = "new_season_offer"
HOLDOUT = 0.20
WINDOW_DAYS = 14
LEAD_DAYS = 35  # the test starts this many days before the export ends
# P(extra order | message) and P(natural orders cancelled | message) per planted persona:
# three respond, two are unmoved (the lapsed have dropped out), one is put off.
EFFECTS: dict[str, tuple[float, float]] = {
    "bargain_hunter": (0.25, 0.0),
    "app_first_tech": (0.15, 0.0),
    "family_home": (0.10, 0.0),
    "lapsed_at_risk": (0.0, 0.0),  # dropped out: nothing revives them (as BTYD assumes)
    "loyal_high_value": (0.0, 0.0),
    "unhappy_returner": (0.0, 0.8),
}


# P(first order | message) of a prospect per hidden persona: a welcome offer that turns some
# shoppers-around into buyers.
PROSPECT_EFFECTS: dict[str, float] = {
    "bargain_hunter": 0.5,
    "app_first_tech": 0.3,
    "family_home": 0.2,
    "loyal_high_value": 0.1,
    "lapsed_at_risk": 0.0,
    "unhappy_returner": 0.0,
}
PROSPECT_ORDER_BASE = 900_000_000  # prospects' first orders: numbers apart from everyone else's


def effects() -> list[tuple[float, float]]:
    """(add, remove) per planted persona index; a persona not listed has no effect."""
    return [EFFECTS.get(p.name, (0.0, 0.0)) for p in PLANTED_PERSONAS]


def plant_campaign(
    rng: np.random.Generator,
    cust: dict[str, np.ndarray],
    orders: dict[str, np.ndarray],
    calendar: Calendar,
    counters: dict[str, int],
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Apply the test to the orders; return the new orders and the test's contacts and truth.

    The truth is per persona: participants, and the sum of (outcome with message - outcome
    without), so chunks add up.
    """
    n = cust["persona"].size
    day = float(calendar.end_day - LEAD_DAYS)
    start = int(day * DAY) + 9 * 3600
    end = start + WINDOW_DAYS * int(DAY)
    who = np.flatnonzero(~cust["is_prospect"] & (cust["first_seen"] < start))
    control = rng.random(who.size) < HOLDOUT
    eff = np.array(effects())[cust["persona"][who]]
    add = rng.random(who.size) < eff[:, 0]
    remove = rng.random(who.size) < eff[:, 1]
    in_window = (orders["ts"] >= start) & (orders["ts"] < end)
    # every planted customer keeps two orders: cancel only where two remain outside the window
    outside = np.bincount(orders["owner"][~in_window], minlength=n)
    remove &= outside[who] >= 2
    natural = np.zeros(n, dtype=bool)
    natural[orders["owner"][in_window]] = True
    y0 = natural[who]
    y1 = (y0 & ~remove) | add
    treated = who[~control]
    # cancel the natural window orders of treated customers put off by the message
    cancelled = np.zeros(n, dtype=bool)
    cancelled[treated[remove[~control]]] = True
    keep = ~(in_window & cancelled[orders["owner"]])
    extra_owner = treated[add[~control]]
    extra_ts = start + rng.integers(3600, WINDOW_DAYS * int(DAY) - 3600, extra_owner.size)
    out = _merge(orders, keep, extra_owner, extra_ts, rng, cust, calendar, counters)
    persona = cust["persona"][who]
    k = len(PLANTED_PERSONAS)
    contacts = {
        "owner": who,
        "ts": np.full(who.size, start, dtype=np.int64),
        "arm": np.where(control, "control", "treatment"),
    }
    truth = {
        "participants": np.bincount(persona, minlength=k),
        "effect_sum": np.bincount(persona, weights=y1.astype(float) - y0, minlength=k),
    }
    return out, {"contacts": contacts, "truth": truth, "start": start}


def plant_prospects(
    rng: np.random.Generator,
    cust: dict[str, np.ndarray],
    calendar: Calendar,
    start: int,
    counters: dict[str, int],
) -> dict[str, Any]:
    """Randomise the prospects known at ``start``; their first orders under the message.

    ``rng`` is the prospects' own stream. Returns the contacts, the orders (owner, ts,
    channel, number, in_sale, count: the shape of :func:`personas.synthetic.orders.draw_orders`)
    and the truth per hidden persona (participants, sum of outcome with - without message).
    """
    n = cust["persona"].size
    who = np.flatnonzero(cust["is_prospect"] & (cust["first_seen"] < start))
    control = rng.random(who.size) < HOLDOUT
    p_buy = np.array([PROSPECT_EFFECTS.get(p.name, 0.0) for p in PLANTED_PERSONAS])
    buy = rng.random(who.size) < p_buy[cust["persona"][who]]  # y1; y0 is 0 for everyone
    owner = who[~control & buy]
    ts = start + rng.integers(3600, WINDOW_DAYS * int(DAY) - 3600, owner.size)
    mix = cust["channel_mix"][owner]
    channel = np.minimum((rng.random((owner.size, 1)) > mix).sum(axis=1), mix.shape[1] - 1)
    base = PROSPECT_ORDER_BASE + counters.get("prospect_order", 0)
    counters["prospect_order"] = counters.get("prospect_order", 0) + owner.size
    day_index = np.clip(ts // DAY - calendar.start_day, 0, calendar.in_sale.size - 1)
    orders = {
        "owner": owner,
        "ts": ts,
        "channel": channel,
        "number": base + 1 + np.arange(owner.size, dtype=np.int64),
        "in_sale": calendar.in_sale[day_index],
        "count": np.bincount(owner, minlength=n),
    }
    k = len(PLANTED_PERSONAS)
    persona = cust["persona"][who]
    return {
        "contacts": {
            "owner": who,
            "ts": np.full(who.size, start, dtype=np.int64),
            "arm": np.where(control, "control", "treatment"),
        },
        "orders": orders,
        "truth": {
            "participants": np.bincount(persona, minlength=k),
            "effect_sum": np.bincount(persona, weights=buy.astype(float), minlength=k),
        },
    }


def _merge(
    orders: dict[str, np.ndarray],
    keep: np.ndarray,
    extra_owner: np.ndarray,
    extra_ts: np.ndarray,
    rng: np.random.Generator,
    cust: dict[str, np.ndarray],
    calendar: Calendar,
    counters: dict[str, int],
) -> dict[str, np.ndarray]:
    """Orders without the cancelled ones, plus the extra ones, sorted by customer and time."""
    mix = cust["channel_mix"][extra_owner]  # cumulative shares
    channel = (rng.random((extra_owner.size, 1)) > mix).sum(axis=1)
    channel = np.minimum(channel, cust["channel_mix"].shape[1] - 1)
    number = counters["order"] + 1 + np.arange(extra_owner.size)
    counters["order"] += extra_owner.size
    day_index = np.clip(extra_ts // DAY - calendar.start_day, 0, calendar.in_sale.size - 1)
    owner = np.concatenate([orders["owner"][keep], extra_owner])
    ts = np.concatenate([orders["ts"][keep], extra_ts])
    order = np.lexsort((ts, owner))
    out = {
        "owner": owner[order],
        "ts": ts[order],
        "channel": np.concatenate([orders["channel"][keep], channel])[order],
        "number": np.concatenate([orders["number"][keep], number])[order],
        "in_sale": np.concatenate([orders["in_sale"][keep], calendar.in_sale[day_index]])[order],
    }
    out["count"] = np.bincount(out["owner"], minlength=cust["persona"].size)
    return out


def contact_block(contacts: dict[str, np.ndarray]) -> dict[str, Any]:
    """The test's campaign_contact events (control included) as an events block's columns."""
    props = [
        f'{{"campaign": "{NAME}", "variant": "{VARIANT}", "arm": "{arm}"}}'
        for arm in contacts["arm"]
    ]
    return {"owner": contacts["owner"], "ts": contacts["ts"], "props": pa.array(props, pa.string())}


def truth_summary(
    participants: np.ndarray,
    effect_sum: np.ndarray,
    prospects: np.ndarray | None = None,
    prospect_sum: np.ndarray | None = None,
) -> dict[str, Any]:
    """meta.json's record of the test: design and the true uplift per persona.

    ``prospects``/``prospect_sum`` are the contacted prospects' participants and effect sums
    per hidden persona (``prospect_true_uplift``: the welcome offer's effect among them).
    """
    out = {
        "name": NAME,
        "variant": VARIANT,
        "holdout": HOLDOUT,
        "window_days": WINDOW_DAYS,
        "outcome": "conversion (an order within the window)",
        "planted": {
            p.name: dict(zip(("add", "remove"), e, strict=True))
            for p, e in zip(PLANTED_PERSONAS, effects(), strict=True)
        },
        "participants": {
            p.name: int(c) for p, c in zip(PLANTED_PERSONAS, participants, strict=True)
        },
        "true_uplift": {
            p.name: (float(s / c) if c else None)
            for p, s, c in zip(PLANTED_PERSONAS, effect_sum, participants, strict=True)
        },
    }
    if prospects is not None and prospect_sum is not None:
        out["prospect_effects"] = dict(PROSPECT_EFFECTS)
        out["prospect_participants"] = {
            p.name: int(c) for p, c in zip(PLANTED_PERSONAS, prospects, strict=True)
        }
        out["prospect_true_uplift"] = {
            p.name: (float(s / c) if c else None)
            for p, s, c in zip(PLANTED_PERSONAS, prospect_sum, prospects, strict=True)
        }
    return out
