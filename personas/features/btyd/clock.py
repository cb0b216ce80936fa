"""The time a customer could buy in: calendar days, or the days the business trades.

BTYD models measure exposure (T, recency, forecast horizons) in time. A business that shuts on
one weekday and over Christmas (UCI Online Retail, a wholesaler closed on Saturdays and from
23 December to 4 January) gives its customers fewer chances to buy in a period with a closure
than in one without, and a calendar clock then under-forecasts the period without (measured
there: holdout total -12% on the calendar clock, -7% on the trading clock). The trading clock
counts the days with any purchase in the history as open and, for the future, the weekdays the
business regularly trades on; for a business open every day it is the calendar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLOCKS = ("auto", "calendar", "trading")
REGULAR = 0.5  # a weekday is an opening day when the business traded on at least half of them
CLOSED = 0.2  # "auto" picks trading when some weekday trades on fewer than 20% of weeks


@dataclass(frozen=True)
class Clock:
    """Maps day numbers (days since 1970-01-01) to clock days.

    ``open_days`` are the observed opening days up to ``until`` (inclusive); later days are
    projected from ``weekdays``, the weekdays (0 = Thursday, as day 0 was) counted as open.
    """

    kind: str
    start: int
    until: int
    open_days: np.ndarray
    weekdays: np.ndarray

    @classmethod
    def from_days(cls, purchase_days: np.ndarray, until: int, kind: str = "auto") -> Clock:
        """The clock of a history whose purchase days (any customer) are ``purchase_days``."""
        if kind not in CLOCKS:
            raise ValueError(f"clock={kind!r} is not one of {CLOCKS}.")
        days = np.unique(np.asarray(purchase_days, dtype=np.int64))
        days = days[days <= until]
        start = int(days.min()) if len(days) else until
        span = np.arange(start, until + 1)
        is_open = np.isin(span, days)
        share = np.array(
            [is_open[span % 7 == w].mean() if (span % 7 == w).any() else 1.0 for w in range(7)]
        )
        if kind == "auto":
            kind = "trading" if len(span) >= 28 and share.min() < CLOSED else "calendar"
        if kind == "calendar":
            return cls("calendar", start, until, span, np.arange(7))
        return cls("trading", start, until, span[is_open], np.flatnonzero(share >= REGULAR))

    def time(self, days: np.ndarray | int) -> np.ndarray:
        """Clock days elapsed from the clock's start to the end of each day."""
        d = np.asarray(days, dtype=np.int64)
        observed = np.searchsorted(self.open_days, np.minimum(d, self.until), side="right")
        return observed + self._projected(self.until + 1, d + 1)

    def span(self, first: int, n_days: float) -> float:
        """Clock days in the ``n_days`` calendar days from day ``first`` on (the future)."""
        whole = int(np.floor(n_days))
        full = float(self._projected(first, np.array([first + whole]))[0])
        return full + (n_days - whole) * len(self.weekdays) / 7.0

    def _projected(self, begin: int, end: np.ndarray) -> np.ndarray:
        """Regular opening days in [begin, end) for each end (0 where end <= begin)."""
        end = np.maximum(np.asarray(end, dtype=np.int64), begin)
        weeks, rest = np.divmod(end - begin, 7)
        per_week = len(self.weekdays)
        offsets = (begin + np.arange(7)) % 7
        in_rest = np.cumsum(np.concatenate([[0], np.isin(offsets, self.weekdays)]))
        return weeks * per_week + in_rest[rest]

    def describe(self) -> str:
        if self.kind == "calendar":
            return "calendar days"
        names = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
        closed = [names[w] for w in range(7) if w not in set(self.weekdays.tolist())]
        return (
            "trading days (days with any purchase; the future counted on regular opening "
            f"weekdays{', closed ' + ', '.join(closed) if closed else ''})"
        )
