"""The dirt of real exports, injected into clean order lines and counted exactly.

Ingestion has to catch it; exact counts in ``meta.json`` let tests check that accounting against
the truth, and since dirty lines are added or typos in a line, dropping them all restores the
planted data.
"""

from __future__ import annotations

import numpy as np

from personas.synthetic.catalogue import Catalogue
from personas.synthetic.planted import CHANNELS

DIRT_KINDS = (
    "duplicate_lines",
    "missing_customer_id",
    "zero_price",
    "non_product",
    "impossible_date",
    "extreme_outlier",
)
_DIRT_RATES = (0.005, 0.01, 0.002, 0.005, 0.0001, 0.0001)  # per clean line, order of DIRT_KINDS


def inject_dirt(
    rng: np.random.Generator,
    lines: dict[str, np.ndarray],
    catalogue: Catalogue,
    counters: dict[str, int],
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Add the dirt of real exports, one kind per dirty line, and count it exactly.

    Each clean line draws at most one kind. Duplicates, guest lines (no customer id), zero-price
    lines and shipping/fee lines are *added* next to their clean host, so dropping every dirty
    line restores the planted data; impossible dates and extreme outliers are typos *in* a line.
    Only sale lines host anything but duplicates, only web/app/phone orders get shipping or fees
    (at most one per order), so no dirty line is ever an exact copy of another line.
    """
    n = lines["ts"].size
    kind = np.searchsorted(np.cumsum(_DIRT_RATES), rng.random(n), side="right")  # 6 = clean
    clean = len(DIRT_KINDS)
    sale = ~lines["is_return"]
    kind[(kind >= 1) & ~sale] = clean
    shipped = (lines["channel"] != CHANNELS.index("store")) & sale
    nonprod = np.flatnonzero((kind == 3) & shipped)
    _, first = np.unique(lines["number"][nonprod], return_index=True)
    kind[(kind == 3) & ~np.isin(np.arange(n), nonprod[first])] = clean
    counts = {name: int((kind == i).sum()) for i, name in enumerate(DIRT_KINDS)}

    out = dict(lines)  # copy only the columns the typos change
    for col in ("ts", "quantity", "amount", "discount"):
        out[col] = lines[col].copy()
    typo = np.flatnonzero(kind == 4)
    year = rng.choice(np.array([1970, 2099]), typo.size)
    ts = out["ts"][typo].astype("datetime64[s]")
    into_year = ts - ts.astype("datetime64[Y]").astype("datetime64[s]")
    out["ts"][typo] = (
        (year - 1970).astype("datetime64[Y]").astype("datetime64[s]") + into_year
    ).astype(np.int64)
    huge = np.flatnonzero(kind == 5)
    for col in ("quantity", "amount", "discount"):
        out[col][huge] = out[col][huge] * 1000
    out["amount"][huge] = np.round(out["amount"][huge], 2)

    # Extra lines: position key = host position + 0.5 (right after it); half the duplicates
    # land somewhere else in the chunk, as a re-sent or merged export would leave them.
    extra: list[dict[str, np.ndarray]] = []
    keys: list[np.ndarray] = []
    dup = np.flatnonzero(kind == 0)
    elsewhere = rng.random(dup.size) < 0.5
    keys.append(np.where(elsewhere, rng.integers(0, n, dup.size), dup) + 0.5)
    extra.append({k: v[dup] for k, v in out.items()})
    guest = np.flatnonzero(kind == 1)
    guest_lines = {k: v[guest] for k, v in out.items()}
    guest_lines["cust"] = np.full(guest.size, -1, dtype=np.int32)
    guest_lines["number"] = counters["order"] + 1 + np.arange(guest.size)
    counters["order"] += guest.size
    keys.append(guest + 0.5)
    extra.append(guest_lines)
    free = np.flatnonzero(kind == 2)  # a gift line on the host's order, booked at price 0
    free_lines = {k: v[free] for k, v in out.items()}
    gift = rng.integers(0, catalogue.offset[-1] + catalogue.size[-1], free.size)
    free_lines["product"] = gift.astype(np.int32)
    free_lines["category"] = (np.searchsorted(catalogue.offset, gift, side="right") - 1).astype(
        np.int8
    )
    free_lines["quantity"] = np.ones(free.size, dtype=np.int32)
    for col in ("unit_price", "amount", "discount"):
        free_lines[col] = np.zeros(free.size)
    keys.append(free + 0.5)
    extra.append(free_lines)
    fee = np.flatnonzero(kind == 3)
    fee_lines = {k: v[fee] for k, v in out.items()}
    shipping = rng.random(fee.size) < 0.7
    fee_price = np.where(
        shipping, rng.choice([4.9, 5.9, 7.9], fee.size), rng.choice([1.5, 2.0], fee.size)
    )
    fee_lines["product"] = np.where(
        shipping, catalogue.price.size - 2, catalogue.price.size - 1
    ).astype(np.int32)
    fee_lines["category"] = np.full(fee.size, -1, dtype=np.int8)
    fee_lines["quantity"] = np.ones(fee.size, dtype=np.int32)
    fee_lines["unit_price"] = fee_price
    fee_lines["amount"] = fee_price
    fee_lines["discount"] = np.zeros(fee.size)
    keys.append(fee + 0.5)
    extra.append(fee_lines)

    position = np.concatenate([np.arange(n, dtype=np.float64), *keys])
    order = np.argsort(position, kind="stable")
    merged = {k: np.concatenate([out[k], *(e[k] for e in extra)])[order] for k in out}
    return merged, counts
