"""The customer-value profile of the founding documents: four "benefit minus sacrifice" indices.

Customer value is economic, functional, emotional and symbolic, each what the customer gets
minus what it costs them. We cannot survey every customer, so each index is built from
behavioural proxies: the mean percentile rank (0..1, robust to skew) of its benefit features
minus the mean percentile rank of its sacrifice features, giving -1..1. A component whose
feature is absent is skipped; a dimension with no benefit component is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from personas.features.catalog import Feature


@dataclass(frozen=True)
class ValueDimension:
    name: str
    label: str
    meaning: str
    benefits: tuple[str, ...]
    sacrifices: tuple[str, ...]

    def feature(self) -> Feature:
        return Feature(
            f"value_{self.name}", "value", self.label,
            f"{self.meaning}: mean percentile of ({', '.join(self.benefits)}) minus mean "
            f"percentile of ({', '.join(self.sacrifices) or 'none'})",
            "index -1..1", ("transactions",), segment=False, higher_is="better", fmt="{:+.2f}",
        )


VALUE_DIMENSIONS: dict[str, ValueDimension] = {
    d.name: d for d in (
        ValueDimension(
            "economic", "Economic value",
            "money saved versus money spent per order",
            ("discount_share", "discounted_order_share", "coupon_redemptions"),
            ("avg_order_value",)),
        ValueDimension(
            "functional", "Functional value",
            "needs met (repeat buying across categories) versus friction",
            ("orders_per_month", "category_diversity", "purchase_regularity"),
            ("return_rate", "cart_abandonment_rate", "support_contacts_365d")),
        ValueDimension(
            "emotional", "Emotional value",
            "how customers feel about the experience versus the trouble they had",
            ("nps_latest", "csat_mean", "review_mean"),
            ("support_contacts_365d", "return_rate")),
        ValueDimension(
            "symbolic", "Symbolic value",
            "identification with the brand versus a fading relationship",
            ("loyalty_member", "email_click_rate", "tenure_days"),
            ("recency_days",)),
    )
}


def value_sql(available: set[str], source: str) -> tuple[str, list[str]]:
    """SELECT adding the value indices over ``source`` for the features in ``available``."""
    cols: list[str] = []
    exprs: list[str] = []
    for d in VALUE_DIMENSIONS.values():
        ben = [f for f in d.benefits if f in available]
        sac = [f for f in d.sacrifices if f in available]
        if not ben:
            continue
        b = _mean_rank(ben)
        expr = f"{b} - {_mean_rank(sac)}" if sac else b
        exprs.append(f"({expr}) AS value_{d.name}")
        cols.append(f"value_{d.name}")
    if not exprs:
        return f"SELECT * FROM {source}", []
    return f"SELECT *, {', '.join(exprs)} FROM {source}", cols


def _mean_rank(features: list[str]) -> str:
    # percent_rank over the non-null values; a customer without the feature gets the midpoint
    ranks = [
        f"coalesce(CASE WHEN {f} IS NOT NULL THEN percent_rank() OVER "
        f"(PARTITION BY ({f} IS NULL) ORDER BY {f}) END, 0.5)"
        for f in features
    ]
    return "((" + " + ".join(ranks) + f") / {len(ranks)})"
