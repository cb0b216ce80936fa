"""Customers: persona, behaviour parameters and activity window, drawn around the planted personas.

This is where ``noise`` acts: each parameter blends the own persona's centre with another's and adds
spread, both growing with the noise level, which is what makes personas overlap.
"""

from __future__ import annotations

import numpy as np

from personas.synthetic.calendar import DAY, Calendar
from personas.synthetic.planted import CATEGORIES, CHANNELS, PLANTED_PERSONAS

_PROSPECT_SHARE = 0.03

# How each scalar parameter varies between customers: (transform, spread per unit of noise).
_PARAM_SCALES: dict[str, tuple[str, float]] = {
    "orders_per_year": ("log", 1.2),
    "extra_lines": ("log", 1.2),
    "price_level": ("logit", 1.5),
    "extra_units": ("log", 1.2),
    "discount_rate": ("logit", 1.5),
    "promo_affinity": ("logit", 1.5),
    "return_rate": ("logit", 1.5),
    "ipt_cv": ("log", 1.0),
    "email_open": ("logit", 1.5),
    "email_click": ("logit", 1.5),
    "sessions_per_year": ("log", 1.2),
    "cart_abandon": ("logit", 1.5),
    "tickets_per_year": ("log", 1.2),
    "nps": ("linear", 4.0),
    "csat": ("linear", 2.0),
    "survey_rate": ("logit", 1.5),
    "loyalty": ("logit", 1.5),
    "coupon_rate": ("logit", 1.5),
}
_MIX_SPREAD = 1.5  # log-probability spread of category and channel mixes per unit of noise


def draw_customers(
    rng: np.random.Generator, n: int, level: float, calendar: Calendar
) -> dict[str, np.ndarray]:
    """Persona, behaviour parameters and activity window of each customer.

    Each parameter is drawn on a scale where spread is symmetric (log for rates, logit for
    probabilities) as a blend of the own persona's centre and a random other persona's centre,
    plus Gaussian spread; both grow with ``level``, which is what makes personas overlap.
    Prospects get a (hidden) persona too, so their browsing and e-mail habits look plausible.
    """
    n_personas = len(PLANTED_PERSONAS)
    shares = np.array([p.share for p in PLANTED_PERSONAS])
    persona = rng.choice(n_personas, size=n, p=shares / shares.sum())
    other = (persona + rng.integers(1, n_personas, size=n)) % n_personas
    pull = level * rng.beta(2.0, 4.0, size=n)
    is_prospect = rng.random(n) < _PROSPECT_SHARE
    cust: dict[str, np.ndarray] = {"persona": persona, "is_prospect": is_prospect}
    for name, (transform, spread) in _PARAM_SCALES.items():
        if name == "extra_lines":
            centre = np.array([p.lines_per_order - 1.0 for p in PLANTED_PERSONAS])
        else:
            centre = np.array([getattr(p, name) for p in PLANTED_PERSONAS], dtype=np.float64)
        z = _forward(centre, transform)
        value = (1.0 - pull) * z[persona] + pull * z[other]
        value += level * spread * rng.standard_normal(n)
        if transform == "log":  # keep the mean rate at the centre, not just the median
            value -= 0.5 * (level * spread) ** 2
        cust[name] = _inverse(value, transform)
    cust["ipt_cv"] = np.clip(cust["ipt_cv"], 0.15, 2.0)  # gamma shapes stay in float range
    cust["nps"] = np.clip(cust["nps"], 0.0, 10.0)
    cust["csat"] = np.clip(cust["csat"], 1.0, 5.0)
    for name, size in (("category_mix", len(CATEGORIES)), ("channel_mix", len(CHANNELS))):
        logp = np.log(np.array([getattr(p, name) for p in PLANTED_PERSONAS]))
        mixed = (1.0 - pull)[:, None] * logp[persona] + pull[:, None] * logp[other]
        mixed += level * _MIX_SPREAD * rng.standard_normal((n, size))
        prob = np.exp(mixed - mixed.max(axis=1, keepdims=True))
        cust[name] = np.cumsum(prob / prob.sum(axis=1, keepdims=True), axis=1)

    # Activity window in days: existing customers were first seen years before the export
    # starts; new ones join inside it early enough to order twice; lapsed ones stop 9-15
    # months before its end (sooner when noisy), everyone else may pause a little.
    start, end = float(calendar.start_day), float(calendar.end_day)
    new_share = np.array([p.new_customer_share for p in PLANTED_PERSONAS])[persona]
    lapsed = np.array([p.lapsed for p in PLANTED_PERSONAS])[persona]
    is_new = rng.random(n) < new_share
    known = np.array([p.years_known for p in PLANTED_PERSONAS])[persona]
    years_before = rng.uniform(known[:, 0], known[:, 1])
    latest_join = np.where(lapsed, start + 90.0, end - 240.0)
    first_seen = np.where(
        is_new,
        rng.uniform(start, np.maximum(latest_join, start + 1.0)),
        start - 365.25 * years_before,
    )
    first_seen = np.where(is_prospect, rng.uniform(start, end, n), first_seen)
    gap = np.where(
        lapsed, rng.uniform(270.0 - 300.0 * level, 450.0, n), rng.exponential(1.0 + 60.0 * level, n)
    )
    active_from = np.maximum(first_seen, start)
    active_to = np.maximum(end - gap, active_from + 120.0)
    seconds = np.floor(first_seen * DAY + rng.integers(0, DAY, n)).astype(np.int64)
    cust["first_seen"] = np.minimum(seconds, calendar.end_day * DAY - 1)
    cust["active_from"] = active_from
    cust["active_to"] = np.minimum(active_to, end)
    cust["lapsed"] = lapsed
    return cust


def _forward(x: np.ndarray, transform: str) -> np.ndarray:
    if transform == "log":
        return np.log(x)
    if transform == "logit":
        return np.log(x / (1.0 - x))
    return x


def _inverse(z: np.ndarray, transform: str) -> np.ndarray:
    if transform == "log":
        return np.exp(z)
    if transform == "logit":
        return 1.0 / (1.0 + np.exp(-z))
    return z
