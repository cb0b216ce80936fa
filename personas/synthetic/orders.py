"""Orders, their lines and returns, and the transaction export built from them.

Order timing, basket size, price level, discounts and returns all come from the customer's
parameters, so purchase behaviour is what carries the planted personas into the transactions.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from personas.synthetic.calendar import DAY, Calendar, clock, uniform_days
from personas.synthetic.catalogue import Catalogue
from personas.synthetic.columns import coded, order_ids
from personas.synthetic.planted import CATEGORIES, CHANNELS
from personas.synthetic.sampling import pick, segments

_DISCOUNT_RATES = np.array([0.10, 0.15, 0.20, 0.25, 0.30, 0.40, 0.50])
_DISCOUNT_PROBS = np.array([0.22, 0.18, 0.22, 0.12, 0.14, 0.07, 0.05])


def _spaced(
    rng: np.random.Generator, count: np.ndarray, shape: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``count[i]`` increasing positions in (0, 1) per owner with Gamma(``shape[i]``) gaps.

    Normalised gamma gaps (a Dirichlet split of the window) are evenly spaced for a large shape
    and Poisson-like for shape 1. Returns the positions and their owners.
    """
    owner, rank = segments(count + 1)
    cum = np.cumsum(rng.gamma(shape[owner]))
    end = np.cumsum(count + 1) - 1
    base = np.concatenate([[0.0], cum[end[:-1]]])
    u = (cum - base[owner]) / (cum[end] - base)[owner]
    keep = rank < count[owner]
    return u[keep], owner[keep]


def draw_orders(
    rng: np.random.Generator,
    cust: dict[str, np.ndarray],
    calendar: Calendar,
    counters: dict[str, int],
) -> dict[str, np.ndarray]:
    """Orders per customer (>= 2 for planted customers) with seasonal, more or less regular timing.

    Gaps between orders are gamma distributed with the customer's coefficient of variation, so
    inter-purchase regularity is a persona trait, and the positions are then mapped through the
    seasonal intensity; sale-minded orders follow the sale calendar instead.
    """
    years = (cust["active_to"] - cust["active_from"]) / 365.25
    count = 2 + rng.poisson(cust["orders_per_year"] * years)
    count = np.where(cust["is_prospect"], 0, np.minimum(count, 400))
    u, owner = _spaced(rng, count, 1.0 / cust["ipt_cv"] ** 2)
    promo = rng.random(owner.size) < cust["promo_affinity"][owner]
    days = uniform_days(u, cust["active_from"][owner], cust["active_to"][owner], calendar, promo)
    channel = pick(rng, cust["channel_mix"], owner)
    ts = clock(rng, days, channel, calendar)
    ts = np.maximum(ts, cust["first_seen"][owner])
    order = np.lexsort((ts, owner))
    owner, ts, channel = owner[order], ts[order], channel[order]
    # Order numbers follow time within the chunk, as a shop system would issue them.
    number = np.empty(owner.size, dtype=np.int64)
    number[np.argsort(ts, kind="stable")] = counters["order"] + 1 + np.arange(owner.size)
    counters["order"] += owner.size
    day_index = np.clip(ts // DAY - calendar.start_day, 0, calendar.in_sale.size - 1)
    return {
        "owner": owner,
        "ts": ts,
        "channel": channel,
        "number": number,
        "in_sale": calendar.in_sale[day_index],
        "count": count,
    }


def draw_lines(
    rng: np.random.Generator,
    cust: dict[str, np.ndarray],
    orders: dict[str, np.ndarray],
    catalogue: Catalogue,
) -> dict[str, np.ndarray]:
    """Sale lines: category by the customer's mix, product by price level, units, discounts.

    Codes are stored in the narrowest integer types: a chunk holds millions of lines.
    """
    owner = orders["owner"]
    extra = np.minimum(rng.poisson(cust["extra_lines"][owner]), 14)
    order, _ = segments(1 + extra)
    c = owner[order]
    category = pick(rng, cust["category_mix"], c)
    level = np.clip(cust["price_level"][c] + 0.12 * rng.standard_normal(order.size), 0.0, 0.9999)
    product = catalogue.offset[category] + (level * catalogue.size[category]).astype(np.int64)
    product = _distinct_products(rng, order, category, product, catalogue)
    units = 1 + np.minimum(rng.poisson(cust["extra_units"][c] * catalogue.units[category]), 11)
    price = catalogue.price[product]
    logit = np.log(cust["discount_rate"][c] / (1.0 - cust["discount_rate"][c]))
    p_discount = 1.0 / (1.0 + np.exp(-(logit + 1.5 * orders["in_sale"][order])))
    rate = np.where(
        rng.random(order.size) < p_discount,
        rng.choice(_DISCOUNT_RATES, order.size, p=_DISCOUNT_PROBS),
        0.0,
    )
    gross = units * price
    discount = np.round(gross * rate, 2)
    return {
        "order": order.astype(np.int32),
        "cust": c.astype(np.int32),
        "category": category.astype(np.int8),
        "product": product.astype(np.int32),
        "quantity": units.astype(np.int32),
        "unit_price": price,
        "discount": discount,
        "amount": np.round(gross - discount, 2),
        "p_return": np.clip(cust["return_rate"][c] * catalogue.returns[category], 0.0, 0.9),
    }


def _distinct_products(
    rng: np.random.Generator,
    order: np.ndarray,
    category: np.ndarray,
    product: np.ndarray,
    catalogue: Catalogue,
) -> np.ndarray:
    """Redraw products repeated within an order, so no clean line is an exact duplicate."""
    product = product.copy()
    n_products = catalogue.price.size
    for _ in range(50):
        key = order * n_products + product
        _, first = np.unique(key, return_index=True)
        repeated = np.ones(key.size, dtype=bool)
        repeated[first] = False
        if not repeated.any():
            return product
        cat = category[repeated]
        product[repeated] = catalogue.offset[cat] + rng.integers(0, catalogue.size[cat])
    raise RuntimeError("could not draw distinct products within orders")


def add_returns(
    rng: np.random.Generator,
    orders: dict[str, np.ndarray],
    sale: dict[str, np.ndarray],
    calendar: Calendar,
) -> dict[str, np.ndarray]:
    """Sale lines plus return lines (negative units and amount, order "R" + the order number).

    Returns of one order share a return date days after the purchase; a return that would fall
    after the export window is not in the export. The refund is the price paid per unit.
    """
    delay = (2.0 + rng.gamma(2.0, 4.0, orders["ts"].size)) * DAY
    return_ts = orders["ts"] + delay.astype(np.int64)
    order = sale["order"]
    back = (rng.random(order.size) < sale["p_return"]) & (return_ts[order] < calendar.end_day * DAY)
    qty = sale["quantity"][back]
    partial = rng.integers(1, qty + 1)
    returned = np.where(rng.random(qty.size) < 0.7, qty, partial)
    paid = np.round(sale["amount"][back] / qty, 2)
    n_sale, n_ret = order.size, int(back.sum())
    return {
        "cust": np.concatenate([sale["cust"], sale["cust"][back]]),
        "order": np.concatenate([order, order[back]]),
        "is_return": np.concatenate([np.zeros(n_sale, bool), np.ones(n_ret, bool)]),
        "ts": np.concatenate([orders["ts"][order], return_ts[order[back]]]),
        "product": np.concatenate([sale["product"], sale["product"][back]]),
        "category": np.concatenate([sale["category"], sale["category"][back]]),
        "quantity": np.concatenate([sale["quantity"], -returned]).astype(np.int32),
        "unit_price": np.concatenate([sale["unit_price"], paid]),
        "amount": np.concatenate([sale["amount"], np.round(-returned * paid, 2)]),
        "discount": np.concatenate([sale["discount"], np.zeros(n_ret)]),
        "channel": orders["channel"][np.concatenate([order, order[back]])].astype(np.int8),
        "number": orders["number"][np.concatenate([order, order[back]])],
    }


def sort_lines(lines: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Time order, as an export by date would list them (orders stay contiguous)."""
    order = np.lexsort(
        (np.arange(lines["ts"].size), lines["number"], lines["is_return"], lines["ts"])
    )
    return {k: v[order] for k, v in lines.items()}


def transaction_table(
    lines: dict[str, np.ndarray], ids: pa.Array, catalogue: Catalogue
) -> pa.Table:
    """Order lines in export shape; repetitive text columns stay dictionary-encoded."""
    size = lines["ts"].size
    return pa.table(
        {
            "customer_id": coded(ids, lines["cust"]),
            "order_id": order_ids(lines["is_return"], lines["number"]),
            "ts": pa.array(lines["ts"], pa.timestamp("s")),
            "product_id": coded(catalogue.product_id, lines["product"]),
            "category": coded(pa.array(CATEGORIES), lines["category"]),
            "quantity": pa.array(lines["quantity"], pa.int64()),
            "unit_price": pa.array(np.round(lines["unit_price"], 2)),
            "amount": pa.array(np.round(lines["amount"], 2)),
            "channel": coded(pa.array(CHANNELS), lines["channel"]),
            "discount": pa.array(np.round(lines["discount"], 2)),
            "currency": coded(pa.array(["EUR"]), np.zeros(size, dtype=np.int8)),
        }
    )
