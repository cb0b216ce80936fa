"""The BTYD models' inputs: a transaction log summarised per customer as of a date.

Time is measured in ``time_unit`` ("D" days, "W" weeks, "M" average months of 365.25/12 days)
from the calendar day of the first purchase. All cut-offs are exclusive ("as of"): a transaction
at or after ``calibration_end`` never enters the calibration summary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from personas.features.btyd.selection import Cohort

# Days per time unit. "M" is the average Gregorian month so 12 "M" make one year.
UNIT_DAYS = {"D": 1.0, "W": 7.0, "M": 365.25 / 12.0}
DAYS_PER_MONTH = 365.25 / 12.0


def unit_days(time_unit: str) -> float:
    """Days in one ``time_unit``, with the supported units named when it is not one."""
    if time_unit not in UNIT_DAYS:
        raise ValueError(
            f"time_unit={time_unit!r} is not supported; use one of {sorted(UNIT_DAYS)}."
        )
    return UNIT_DAYS[time_unit]


def _utc(ts: pd.Series | pd.Timestamp | str | Any) -> Any:
    """Make timestamps tz-aware UTC; naive values are read as UTC, as the lake contract says."""
    if isinstance(ts, pd.Series):
        ts = pd.to_datetime(ts)
        return ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _daily_purchases(
    codes: np.ndarray, days: np.ndarray, amounts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One row per customer and calendar day: several records on a day are one purchase.

    Fader and Hardie count a customer's purchase *occasions*; split orders or several order
    lines on one day would otherwise inflate frequency (CDNOW has 2,068 such repeated days).
    Works on integer customer codes and day numbers (a single sortable int64 key) because a
    pandas groupby on string ids and datetimes is several times slower on millions of rows.
    Returns customer codes, days and summed amounts sorted by customer, then day.
    """
    if len(codes) == 0:
        return codes, days, amounts
    first_day = days.min()
    span = int(days.max() - first_day) + 1
    keys, inverse = np.unique(codes * span + (days - first_day), return_inverse=True)
    summed = np.bincount(inverse.ravel(), weights=amounts, minlength=len(keys))
    return keys // span, keys % span + first_day, summed


def _check_transactions(tx: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in tx.columns]
    if missing:
        raise ValueError(
            f"tx is missing column(s) {missing}; it has {list(tx.columns)}. Pass the right "
            "customer_col / ts_col / amount_col names."
        )
    for col in columns[:2]:
        n_null = int(tx[col].isna().sum())
        if n_null:
            raise ValueError(
                f"tx[{col!r}] has {n_null} missing value(s); such rows cannot be placed on a "
                "customer's timeline. Drop them before calling rfm_summary."
            )
    if len(columns) == 3 and int(tx[columns[2]].isna().sum()):
        raise ValueError(
            f"tx[{columns[2]!r}] has missing values; fill or drop them, or pass amount_col=None."
        )


def rfm_summary(
    tx: pd.DataFrame,
    calibration_end: Any,
    observation_end: Any = None,
    time_unit: str = "W",
    customer_col: str = "customer_id",
    ts_col: str = "ts",
    amount_col: str | None = "amount",
) -> pd.DataFrame:
    """Summarise a transaction log into the sufficient statistics of the BTYD models.

    Parameters
    ----------
    tx : DataFrame
        One row per transaction (or order line). Timestamps may be naive (read as UTC) or
        tz-aware; ids may be any hashable dtype, including pandas 3's string dtype.
    calibration_end : timestamp-like
        Exclusive cut-off: only rows with ``ts < calibration_end`` are summarised, so nothing
        on or after the cut-off can leak into a model fitted as of that date.
    observation_end : timestamp-like, optional
        Exclusive end of a holdout period starting at ``calibration_end``; adds
        ``frequency_holdout`` and ``duration_holdout`` for validation.
    time_unit : {"D", "W", "M"}
        Unit of ``recency``, ``T`` and ``duration_holdout``.
    customer_col, ts_col, amount_col : str
        Column names; ``amount_col=None`` skips ``monetary_value``.

    Returns
    -------
    DataFrame
        Indexed by customer (customers first seen before ``calibration_end``), with columns
        ``frequency`` (repeat purchase days), ``recency`` (first to last purchase day), ``T``
        (first purchase day to the last calendar day before ``calibration_end``: FHL's
        convention, see the comment in the code), ``monetary_value`` (mean value of the repeat
        purchase days, 0 when frequency is 0; the first purchase is excluded because it is the
        acquisition, not a draw from the repeat-spend process) and, with ``observation_end``,
        ``frequency_holdout`` (purchase days in [calibration_end, observation_end)) and
        ``duration_holdout``.

    Examples
    --------
    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "a", "b"],
    ...                    "ts": pd.to_datetime(["2024-01-01 09:00", "2024-01-01 17:00",
    ...                                          "2024-01-15 12:00", "2024-01-08 08:00"], utc=True),
    ...                    "amount": [10.0, 5.0, 20.0, 7.0]})
    >>> print(rfm_summary(tx, "2024-01-29", time_unit="D").reset_index().to_string(index=False))
    customer_id  frequency  recency    T  monetary_value
              a          1     14.0 27.0            20.0
              b          0      0.0 20.0             0.0
    """
    days_per_unit = unit_days(time_unit)
    columns = [customer_col, ts_col] + ([amount_col] if amount_col else [])
    _check_transactions(tx, columns)
    cal_end = _utc(calibration_end)
    # Naive UTC datetime64 values and integer UTC day numbers: cheap to compare and group.
    ts = _utc(tx[ts_col]).dt.tz_localize(None).to_numpy()
    days = ts.astype("datetime64[D]").astype(np.int64)
    codes, ids = pd.factorize(tx[customer_col])  # sorting ids here costs more than below
    amounts = tx[amount_col].to_numpy(dtype=float) if amount_col else np.zeros(len(tx))
    in_cal = ts < cal_end.tz_localize(None).to_datetime64()
    cust, day, amount = _daily_purchases(codes[in_cal], days[in_cal], amounts[in_cal])
    cust, first, n_days = np.unique(cust, return_index=True, return_counts=True)
    last = first + n_days - 1
    # T runs to the last calendar day of the calibration period (1997-09-30 for FHL's
    # 1997-10-01 cut-off), as in Fader-Hardie's CDNOW files, BTYD (T.cal = "1997-09-30") and
    # lifetimes (inclusive observation_period_end): purchase times are day stamps, so the
    # observation window is measured in the same whole days. Measuring to the cut-off instead
    # adds one day to every T and moves the CDNOW estimate of a by +2.7%.
    last_cal_day = (cal_end - pd.Timedelta(1, "ns")).tz_localize(None).to_datetime64()
    last_cal_day = last_cal_day.astype("datetime64[D]").astype(np.int64)
    frequency = n_days - 1
    out = pd.DataFrame(
        {
            "frequency": frequency.astype("int64"),
            "recency": (day[last] - day[first]) / days_per_unit,
            "T": (last_cal_day - day[first]) / days_per_unit,
        },
        index=pd.Index(ids.take(cust), name=customer_col),
    )
    if amount_col:
        repeat_total = np.add.reduceat(amount, first) - amount[first] if len(first) else first
        out["monetary_value"] = np.where(
            frequency > 0, repeat_total / np.maximum(frequency, 1), 0.0
        )
    if observation_end is not None:
        obs_end = _utc(observation_end)
        if obs_end <= cal_end:
            raise ValueError(f"observation_end={obs_end} must be after calibration_end={cal_end}.")
        in_hold = ~in_cal & (ts < obs_end.tz_localize(None).to_datetime64())
        hold_cust, _, _ = _daily_purchases(codes[in_hold], days[in_hold], amounts[in_hold])
        counts = np.bincount(hold_cust, minlength=len(ids))
        out["frequency_holdout"] = counts[cust].astype("int64")
        out["duration_holdout"] = (obs_end - cal_end) / pd.Timedelta(days=days_per_unit)
    return out.sort_index()


def holdout_cohort(
    tx: pd.DataFrame,
    calibration_end: Any,
    observation_end: Any,
    columns: tuple[str, str] = ("customer_id", "ts"),
) -> Cohort:
    """The customers first seen before ``calibration_end`` as a selection ``Cohort``.

    ``columns`` names the customer and timestamp columns of ``tx``.

    Purchase days as in :func:`rfm_summary` (several records on a day are one purchase), kept
    as day numbers so that :func:`personas.features.btyd.selection.compare` can measure time
    on the calendar or on the business's trading days.
    """
    from personas.features.btyd.selection import Cohort

    customer_col, ts_col = columns
    _check_transactions(tx, [customer_col, ts_col])
    cal_end, obs_end = _utc(calibration_end), _utc(observation_end)
    if obs_end <= cal_end:
        raise ValueError(f"observation_end={obs_end} must be after calibration_end={cal_end}.")
    ts = _utc(tx[ts_col]).dt.tz_localize(None).to_numpy()
    days = ts.astype("datetime64[D]").astype(np.int64)
    codes, _ = pd.factorize(tx[customer_col])
    cal_day = int(np.datetime64(cal_end.tz_localize(None), "D").astype(np.int64))
    obs_day = int(np.datetime64(obs_end.tz_localize(None), "D").astype(np.int64))
    keep = days < obs_day
    cust, day, _ = _daily_purchases(codes[keep], days[keep], np.zeros(int(keep.sum())))
    _, first_idx, counts = np.unique(cust, return_index=True, return_counts=True)
    first = np.repeat(day[first_idx], counts)
    in_cohort = first < cal_day
    cal = in_cohort & (day < cal_day)
    groups = np.repeat(np.arange(len(first_idx)), counts)
    cohort = first[first_idx] < cal_day
    n_cal = np.bincount(groups[cal], minlength=len(first_idx))
    last = np.zeros(len(first_idx), dtype=np.int64)
    np.maximum.at(last, groups[cal], day[cal])
    hold = np.bincount(groups[in_cohort & ~cal], minlength=len(first_idx))
    repeat = in_cohort & (day > first)
    rep_days, rep_counts = np.unique(day[repeat], return_counts=True)
    return Cohort(
        first=day[first_idx][cohort],
        last=last[cohort],
        frequency=(n_cal - 1)[cohort],
        holdout=hold[cohort],
        cal_end=cal_day,
        obs_end=obs_day,
        trading_days=np.unique(day[day < cal_day]),
        repeat_days=rep_days,
        repeat_counts=rep_counts.astype(float),
    )
