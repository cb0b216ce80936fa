"""Customer lifetime value: BG/NBD purchases times Gamma-Gamma spend, discounted.

``score_customers`` is the whole path from a transaction log to per-customer scores on small
data (pandas); ``personas.features.clv`` does the same from the lake with the summary in SQL.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from personas.features.btyd.models.base import ArrayLike, PurchaseModel
from personas.features.btyd.models.bgnbd import BetaGeoModel
from personas.features.btyd.models.gamma_gamma import GammaGammaModel
from personas.features.btyd.summary import DAYS_PER_MONTH, rfm_summary, unit_days


def customer_lifetime_value(
    bgnbd: PurchaseModel,
    gg: GammaGammaModel,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    months: int = 12,
    time_unit: str = "W",
    annual_discount_rate: float = 0.10,
    month_length: float | None = None,
) -> np.ndarray:
    """Discounted expected value of each customer's purchases over the next ``months``.

    ``bgnbd`` is any fitted purchase model (BG/NBD, MBG/NBD, Pareto/NBD, NBD); a month is
    ``month_length`` of its time units (default: an average month in ``time_unit``; on a
    trading-day clock, the trading days in a month).

    As in lifetimes: for each month m the expected purchases in month m (difference of the
    cumulative conditional expectations) times the expected spend per purchase, discounted by
    (1 + monthly rate)^m. The annual rate is converted to the equivalent monthly rate
    (1 + annual)^(1/12) - 1, so 12 monthly discounts equal one annual discount.
    """
    if months < 1:
        raise ValueError(f"months={months} must be >= 1.")
    if annual_discount_rate <= -1:
        raise ValueError(f"annual_discount_rate={annual_discount_rate} must be > -1.")
    month = month_length or DAYS_PER_MONTH / unit_days(time_unit)
    value = gg.conditional_expected_average_value(frequency, monetary_value)
    monthly_rate = (1.0 + annual_discount_rate) ** (1.0 / 12.0) - 1.0
    steps = np.arange(months + 1) * month
    cumulative = np.stack(
        [bgnbd.conditional_expected_purchases(s, frequency, recency, T) for s in steps[1:]]
    )
    per_month = np.diff(np.vstack([np.zeros_like(cumulative[0]), cumulative]), axis=0)
    discount = (1.0 + monthly_rate) ** -np.arange(1, months + 1)
    return value * (discount @ per_month)


def score_customers(
    tx: pd.DataFrame,
    as_of: Any,
    time_unit: str = "W",
    customer_col: str = "customer_id",
    ts_col: str = "ts",
    amount_col: str = "amount",
    penalizer: float = 0.0,
    annual_discount_rate: float = 0.10,
) -> pd.DataFrame:
    """Fit BG/NBD and Gamma-Gamma on purchases before ``as_of`` and score every customer.

    Only rows with a positive amount count as purchases: returns and zero-value lines are not
    purchase occasions, and the Gamma-Gamma density needs positive spend. Customers with one
    purchase are scored too (BG/NBD handles frequency 0; their spend is the population mean).

    Returns
    -------
    DataFrame
        Indexed by customer: ``p_alive``, ``expected_purchases_90d``, ``expected_purchases_365d``,
        ``clv_12m`` and the ``rfm_summary`` columns.
    """
    if amount_col not in tx.columns:
        raise ValueError(f"tx has no {amount_col!r} column; pass amount_col=.")
    purchases = tx[tx[amount_col].to_numpy(dtype=float) > 0]
    rfm = rfm_summary(purchases, as_of, None, time_unit, customer_col, ts_col, amount_col)
    if rfm.empty:
        raise ValueError(f"No purchases with a positive amount before as_of={as_of}.")
    triplet = (rfm["frequency"], rfm["recency"], rfm["T"])
    bgnbd = BetaGeoModel(penalizer).fit(*triplet)
    gg = GammaGammaModel(penalizer).fit(rfm["frequency"], rfm["monetary_value"])
    unit = unit_days(time_unit)
    scores = pd.DataFrame(
        {
            "p_alive": bgnbd.probability_alive(*triplet),
            "expected_purchases_90d": bgnbd.conditional_expected_purchases(90 / unit, *triplet),
            "expected_purchases_365d": bgnbd.conditional_expected_purchases(365 / unit, *triplet),
            "clv_12m": customer_lifetime_value(
                bgnbd, gg, *triplet, rfm["monetary_value"], 12, time_unit, annual_discount_rate
            ),
        },
        index=rfm.index,
    )
    return scores.join(rfm)
