"""When things happen: the export window, its seasonal purchase intensity and channel-typical hours.

Order and session times are drawn as quantiles and mapped through this intensity, so the December
peak, the summer lull, busy weekends and the sale calendar show in every export (and a test checks
that December leads in spend).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from personas.synthetic.planted import CHANNELS

DAY = 86_400  # seconds
# Sale calendar as (month, first day, last day): January, spring, summer and Black Friday sales.
_SALES = ((1, 2, 14), (3, 14, 20), (6, 26, 30), (7, 1, 9), (11, 22, 30))


@dataclass(frozen=True)
class Calendar:
    """Export window and the daily purchase intensity that shapes order timing."""

    start_day: int  # days since 1970-01-01, inclusive
    end_day: int  # exclusive
    edges: np.ndarray  # day boundaries, start_day .. end_day
    cdf_regular: np.ndarray  # cumulative intensity at the edges (weekly + yearly seasonality)
    cdf_promo: np.ndarray  # the same, concentrated on the sale calendar
    in_sale: np.ndarray  # bool per day of the window
    hour_cdf: np.ndarray  # (channel, 24) cumulative hour-of-day distribution


def make_calendar(start: str, end: str) -> Calendar:
    """Daily purchase intensity: a December peak, a summer lull, weekends and the sale calendar."""
    start_day = int(np.datetime64(start, "D").astype(np.int64))
    end_day = int(np.datetime64(end, "D").astype(np.int64)) + 1
    if end_day - start_day < 180:
        raise ValueError(f"start={start!r}, end={end!r}: the window must span at least 180 days")
    days = np.arange(start_day, end_day)
    dates = days.astype("datetime64[D]")
    doy = (dates - dates.astype("datetime64[Y]")).astype(np.int64)
    month = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    dom = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    in_sale = np.zeros(days.size, dtype=bool)
    for m, first, last in _SALES:
        in_sale |= (month == m) & (dom >= first) & (dom <= last)
    yearly = (
        1.0
        + 1.6 * np.exp(-0.5 * ((doy - 349) / 10.0) ** 2)
        - 0.2 * np.exp(-0.5 * ((doy - 200) / 20.0) ** 2)
    )
    weekly = np.array([0.95, 0.9, 0.92, 1.0, 1.1, 1.25, 0.95])[(days + 3) % 7]  # Monday first
    regular = yearly * weekly * np.where(in_sale, 1.4, 1.0)
    promo = regular * np.where(in_sale, 8.0, 1.0)
    hours = np.arange(24)

    def bump(centre: float, width: float) -> np.ndarray:
        return np.exp(-0.5 * ((hours - centre) / width) ** 2)

    web = 0.15 + bump(12.5, 2.0) + 1.3 * bump(20.5, 2.0)
    app = 0.1 + 0.6 * bump(7.5, 1.0) + 0.5 * bump(12.5, 1.5) + 1.5 * bump(21.5, 1.5)
    store = np.where((hours >= 9) & (hours < 21), 0.6 + bump(16.5, 2.5), 0.0)
    phone = np.where((hours >= 9) & (hours < 17), 1.0, 0.0)
    hour_cdf = np.cumsum(np.stack([web, app, store, phone]), axis=1)
    edges = np.arange(start_day, end_day + 1, dtype=np.float64)
    return Calendar(
        start_day=start_day,
        end_day=end_day,
        edges=edges,
        cdf_regular=_cdf(regular),
        cdf_promo=_cdf(promo),
        in_sale=in_sale,
        hour_cdf=hour_cdf / hour_cdf[:, -1:],
    )


def _cdf(weights: np.ndarray) -> np.ndarray:
    cum = np.concatenate([[0.0], np.cumsum(weights)])
    return cum / cum[-1]


def uniform_days(
    u: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    calendar: Calendar,
    promo: np.ndarray | None = None,
) -> np.ndarray:
    """Map quantiles ``u`` in [0, 1) to fractional days in [lo, hi) under the seasonal intensity."""
    out = np.empty(u.size)
    masks = [np.ones(u.size, dtype=bool)] if promo is None else [~promo, promo]
    for mask, cdf in zip(masks, (calendar.cdf_regular, calendar.cdf_promo), strict=False):
        f_lo = np.interp(lo[mask], calendar.edges, cdf)
        f_hi = np.interp(hi[mask], calendar.edges, cdf)
        out[mask] = np.interp(f_lo + u[mask] * (f_hi - f_lo), cdf, calendar.edges)
    return np.clip(out, lo, np.nextafter(hi, -np.inf))


def clock(
    rng: np.random.Generator, days: np.ndarray, channel: np.ndarray, calendar: Calendar
) -> np.ndarray:
    """Timestamps (s) on the given days at channel-typical hours (stores open 9-21, apps late)."""
    hour = np.empty(days.size, dtype=np.int64)
    u = rng.random(days.size)
    for c in range(len(CHANNELS)):
        mask = channel == c
        hour[mask] = np.searchsorted(calendar.hour_cdf[c], u[mask], side="right")
    hour = np.minimum(hour, 23)
    day = np.floor(days).astype(np.int64)
    return day * DAY + hour * 3600 + rng.integers(0, 3600, days.size)
