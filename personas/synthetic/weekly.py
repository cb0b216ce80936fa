"""Weekly exports with a planted change: data to test scheduled refreshes over time.

A retailer hands over one folder per week (``week=YYYY-MM-DD/transactions.csv.gz`` and
``customers.csv.gz``, in the demo mapping's columns). Four planted personas buy from a base of
customers known before the first week plus a steady stream of new ones. From ``change_week``
on, one persona (``grows``) takes 25% of the new customers instead of 10%, and a new category
(``new_category``) appears in its baskets: what a refresh policy should notice once, refit for,
and then settle on again. Before the change the retailer sells seven of the catalogue's
eight categories, so the new one enters the features' top categories. Deterministic for a
seed; ``truth.parquet`` holds each customer's persona and first week.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from personas.synthetic.planted import CATEGORIES, CHANNELS

# persona -> (share of new customers before the change, orders per year, lines per order,
#             price level, discount probability, category weights, channel weights)
WEEKLY_PERSONAS = {
    "fashion_fans": (
        0.35,
        10,
        2.5,
        40.0,
        0.15,
        {"fashion": 6, "beauty": 2, "sports": 1},
        {"web": 3, "app": 2},
    ),
    "home_makers": (0.30, 6, 3.5, 30.0, 0.10, {"home": 5, "kids": 3}, {"store": 4, "web": 1}),
    "bargain_grocers": (0.25, 24, 4.0, 6.0, 0.6, {"grocery": 8, "home": 1}, {"store": 3}),
    "tech_buyers": (0.10, 3, 1.2, 250.0, 0.05, {"electronics": 6, "sports": 1}, {"web": 4}),
}


@dataclass
class WeeklyData:
    out: Path
    weeks: list[str]
    rows: dict[str, int] = field(default_factory=dict)


def _week_start(start: str) -> date:
    d = date.fromisoformat(start)
    return d - timedelta(days=d.weekday())  # weeks start on Monday


def generate_weekly(
    out_dir: str | Path,
    weeks: int = 52,
    seed: int = 0,
    base_customers: int = 2000,
    new_per_week: int = 30,
    change_week: int | None = 30,
    grows: str = "tech_buyers",
    grown_share: float = 0.25,
    new_category: str = "garden",
    start: str = "2025-01-06",
    history_weeks: int = 52,
) -> WeeklyData:
    """Write ``weeks`` weekly export folders under ``out_dir`` (see the module docstring).

    Weeks are numbered from 1; ``change_week`` (None: no change) is the first changed week.
    The first folder also holds ``history_weeks`` of earlier orders (the initial export), so
    the first refresh has customers with enough history to profile.
    """
    if grows not in WEEKLY_PERSONAS:
        raise ValueError(f"grows={grows!r}: expected one of {sorted(WEEKLY_PERSONAS)}")
    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(WEEKLY_PERSONAS)
    base_share = np.array([WEEKLY_PERSONAS[n][0] for n in names])
    changed_share = base_share.copy()
    g = names.index(grows)
    rest = np.arange(len(names)) != g
    changed_share[g] = grown_share
    changed_share[rest] *= (1 - grown_share) / base_share[rest].sum()
    w0 = _week_start(start)
    cats = [*CATEGORIES, new_category]
    # customers: id, persona, first day (base customers were known before the first week)
    persona = list(rng.choice(len(names), base_customers, p=base_share))
    known = 7 * history_weeks + 30
    first = [w0 - timedelta(days=int(d)) for d in rng.integers(known, known + 900, base_customers)]
    first_week = [0] * base_customers
    info = WeeklyData(out, [])
    order_no = 0
    truth = []
    lines: list[tuple] = []
    for w in range(1 - history_weeks, weeks + 1):
        monday = w0 + timedelta(weeks=w - 1)
        changed = change_week is not None and w >= change_week
        n_before = len(persona)
        share = changed_share if changed else base_share
        persona += list(rng.choice(len(names), new_per_week, p=share))
        first += [monday + timedelta(days=int(d)) for d in rng.integers(0, 7, new_per_week)]
        first_week += [w] * new_per_week
        lo = 0 if w <= 1 else n_before
        if w > 1:
            lines = []
        for c in range(len(persona)):
            p = WEEKLY_PERSONAS[names[persona[c]]]
            n_orders = rng.poisson(p[1] / 52)
            if first[c] >= monday and n_orders == 0 and c >= lo:
                n_orders = 1  # a new customer is new because they ordered
            for _ in range(n_orders):
                day = max(first[c], monday) + timedelta(days=int(rng.integers(0, 7)))
                if day >= monday + timedelta(days=7):
                    continue
                order_no += 1
                ts = datetime(day.year, day.month, day.day) + timedelta(
                    seconds=int(rng.integers(8 * 3600, 22 * 3600))
                )
                weights = np.array([p[5].get(k, 0.0) for k in cats], dtype=float)
                weights[-1] = 0.0
                if changed and names[persona[c]] == grows:
                    weights[-1] = 4.0
                elif changed:
                    weights[-1] = 0.1
                chans = np.array([p[6].get(k, 0.2) for k in CHANNELS], dtype=float)
                channel = CHANNELS[rng.choice(len(CHANNELS), p=chans / chans.sum())]
                for _ in range(1 + rng.poisson(p[2] - 1)):
                    cat = cats[rng.choice(len(cats), p=weights / weights.sum())]
                    price = round(float(p[3] * rng.lognormal(0, 0.4)), 2)
                    qty = 1 + int(rng.poisson(0.3))
                    disc = round(price * qty * 0.2, 2) if rng.random() < p[4] else 0.0
                    lines.append(
                        (
                            f"C{c + 1:07d}",
                            f"O{order_no:09d}",
                            ts.strftime("%Y-%m-%d %H:%M:%S"),
                            f"{cat[:3].upper()}-{int(rng.integers(1, 200)):05d}",
                            cat,
                            qty,
                            price,
                            round(price * qty - disc, 2),
                            channel,
                            disc,
                            "EUR",
                        )
                    )
        if w < 1:
            continue
        folder = out / f"week={monday.isoformat()}"
        folder.mkdir(exist_ok=True)
        tx = pd.DataFrame(
            lines,
            columns=[
                "customer_id",
                "order_id",
                "ts",
                "product_id",
                "category",
                "quantity",
                "unit_price",
                "amount",
                "channel",
                "discount",
                "currency",
            ],
        )
        ids = range(lo, len(persona))
        cu = pd.DataFrame(
            {
                "customer_id": [f"C{c + 1:07d}" for c in ids],
                "first_seen": [f"{first[c].isoformat()} 09:00:00" for c in ids],
                "country": "FI",
                "region": "urban",
                "age_band": "",
                "income_band": "",
                "household": "",
                "loyalty_member": "false",
                "loyalty_tier": "",
                "is_prospect": "false",
                "full_name": [f"Customer {c + 1}" for c in ids],
                "email": [f"customer{c + 1}@example.com" for c in ids],
                "phone": "",
            }
        )
        for name, df in (("transactions", tx), ("customers", cu)):
            with gzip.GzipFile(folder / f"{name}.csv.gz", "wb", mtime=0) as fh:
                fh.write(df.to_csv(index=False).encode("utf-8"))
            info.rows[name] = info.rows.get(name, 0) + len(df)
        info.weeks.append(folder.name)
        truth += [(f"C{c + 1:07d}", names[persona[c]], first_week[c]) for c in ids]
    pd.DataFrame(truth, columns=["customer_id", "persona", "first_week"]).to_parquet(
        out / "truth.parquet", index=False
    )
    meta = {
        "weeks": weeks,
        "seed": seed,
        "change_week": change_week,
        "grows": grows,
        "new_category": new_category,
        "rows": info.rows,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return info
