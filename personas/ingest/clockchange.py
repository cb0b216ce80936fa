"""Local times at clock changes: the ones that do not exist and the ones that occur twice.

In a zone with daylight saving time, a local time inside the spring gap does not exist
(Europe/Helsinki, 2025-03-30 03:30) and one inside the autumn fold occurs twice (2025-10-26
03:30, first at +03:00, then at +02:00). DuckDB's ``timezone(zone, naive)`` resolves both
silently: a time in the gap is read with the offset before the change (so 03:30 becomes 04:30
local, the gap's length later: ``shift_forward``), one in the fold with the offset after it
(the later of the two instants: ``latest``). Those stay the defaults; per timestamp column a
mapping may choose ``nonexistent: error`` and ``ambiguous: earliest|error``.

The days on which a zone's clock changes are computed once from the IANA database
(:mod:`zoneinfo`); a value is tested with one integer lookup among them, and only values on
such a day pay for the calendar round trip that tells a skipped or repeated time. The flags
``nonexistent_time`` and ``ambiguous_time`` count the rows touched in the ingest summary.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import UTC, datetime, timedelta

from personas.sqltext import quote

#: Transitions considered: data before or after these years is read without the check.
YEARS = (1970, 2060)
_US = 1_000_000


@functools.lru_cache(maxsize=32)
def transitions(tz: str) -> tuple[tuple[int, int, int], ...]:
    """``(instant, offset before, offset after)`` of each offset change, in UTC microseconds."""
    zone = zoneinfo.ZoneInfo(tz)
    out = []
    t = datetime(YEARS[0], 1, 1, tzinfo=UTC)
    end = datetime(YEARS[1], 1, 1, tzinfo=UTC)
    step = timedelta(days=7)
    before = t.astimezone(zone).utcoffset()
    while t < end:
        nxt = t + step
        after = nxt.astimezone(zone).utcoffset()
        if after != before:  # bisect the week down to the second
            lo, hi = t, nxt
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                if mid.astimezone(zone).utcoffset() == before:
                    lo = mid
                else:
                    hi = mid
            assert before is not None and after is not None
            out.append((_us(hi), _us(before), _us(after)))
            before = after
        t = nxt
    return tuple(out)


def _us(x: datetime | timedelta) -> int:
    if isinstance(x, datetime):
        return int(x.timestamp()) * _US
    return int(x.total_seconds()) * _US


def _days(tz: str, utc: bool = False) -> str:
    """The days (since 1970) on which the clock changes, as a SQL list.

    Days of wall-clock time, or (``utc``) the days of UTC a value read on such a day can fall
    on: the day before and after too, since offsets reach +-14 hours.
    """
    day = 86_400 * _US
    days = set()
    for t, ob, oa in transitions(tz):
        lo, hi = t + min(ob, oa), t + max(ob, oa)
        days |= {lo // day, (hi - 1) // day}
    if utc:
        days = {d + k for d in days for k in (-1, 0, 1)}
    return ", ".join(map(str, sorted(days)))


def _on_change_day(naive: str, tz: str, then: str, utc: str | None = None) -> str:
    """``then`` on the few days with a change (one integer lookup a row), else false.

    Only those rows pay for the calendar (ICU) arithmetic of ``then``. With ``utc`` (the
    value already read) the lookup needs no second parse of the source text either.
    """
    days = _days(tz, utc is not None)
    if not days:
        return "false"
    on = f"epoch_us({utc if utc is not None else naive}) // {86_400 * _US} IN ({days})"
    return f"(CASE WHEN {on} THEN ({then}) ELSE false END)"


def _local(utc: str, tz: str) -> str:
    return f"timezone('{quote(tz)}', {utc})"


def gaps(tz: str) -> list[tuple[int, int, int]]:
    """Wall-clock spans that do not exist: ``(start, end, offset before)``."""
    return [(t + ob, t + oa, ob) for t, ob, oa in transitions(tz) if oa > ob]


def folds(tz: str) -> list[tuple[int, int, int, int]]:
    """Wall-clock spans that occur twice: ``(start, end, offset before, offset after)``."""
    return [(t + oa, t + ob, ob, oa) for t, ob, oa in transitions(tz) if ob > oa]


def nonexistent_sql(naive: str, tz: str, utc: str | None = None) -> str:
    """True where the naive timestamp ``naive`` is a local time the clock skips in ``tz``.

    Such a time does not come back from the round trip local -> UTC -> local.
    """
    return _on_change_day(naive, tz, f"{_local(_local(naive, tz), tz)} <> {naive}", utc)


def ambiguous_sql(naive: str, tz: str, utc: str | None = None) -> str:
    """True where the naive timestamp ``naive`` is a local time that occurs twice in ``tz``.

    DuckDB reads it as the later instant; the earlier one (one step earlier) reads back as
    the same local time. Steps: the sizes of the zone's changes (an hour, mostly).
    """
    x = _local(naive, tz)
    tests = [f"{_local(f'{x} - INTERVAL {s} SECOND', tz)} = {naive}" for s in _steps(tz)]
    return _on_change_day(naive, tz, " OR ".join(tests) or "false", utc)


def _steps(tz: str) -> list[int]:
    return sorted({(ob - oa) // _US for _, ob, oa in transitions(tz) if ob > oa})


def zoned_sql(naive: str, tz: str, nonexistent: str, ambiguous: str) -> str:
    """``naive`` read as local time in ``tz``, as TIMESTAMPTZ, under the two rules.

    With the defaults this is DuckDB's ``timezone(tz, naive)`` and nothing more. ``error``
    gives NULL (the row is then quarantined as ``bad_value``); ``earliest`` takes the offset
    before the change.
    """
    plain = f"timezone('{quote(tz)}', {naive})"
    if nonexistent == "shift_forward" and ambiguous == "latest":
        return plain
    cases = []
    if nonexistent == "error":
        cases.append(f"WHEN {nonexistent_sql(naive, tz)} THEN NULL")
    if ambiguous == "error":
        cases.append(f"WHEN {ambiguous_sql(naive, tz)} THEN NULL")
    elif ambiguous == "earliest":
        which = " ".join(
            f"WHEN {_local(f'{plain} - INTERVAL {s} SECOND', tz)} = {naive} "
            f"THEN {plain} - INTERVAL {s} SECOND"
            for s in _steps(tz)
        )
        cases.append(f"WHEN {ambiguous_sql(naive, tz)} THEN (CASE {which} END)")
    return f"(CASE {' '.join(cases)} ELSE {plain} END)"
