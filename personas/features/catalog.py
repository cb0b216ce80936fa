"""The feature catalogue: every per-customer feature with its definition, unit and tables.

The catalogue is the single description the SQL, the docs (``docs/features.md``), the persona
traits and the report labels all read, so a feature means the same thing everywhere.
Features whose tables (or columns) are absent from the lake are left out, never zero-filled:
a zero would look like a real "never opens e-mails".
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Feature:
    """One per-customer feature."""

    name: str
    group: str
    label: str
    definition: str
    unit: str
    tables: tuple[str, ...]
    segment: bool = True
    higher_is: str = ""
    fmt: str = "{:,.2f}"
    kind: str = "numeric"

    def format(self, value: float | None) -> str:
        if value is None:
            return "n/a"
        try:
            return self.fmt.format(value)
        except (ValueError, TypeError):
            return str(value)


GROUPS = {
    "rfm": "Recency, frequency, monetary and tenure",
    "order": "Order value and inter-purchase timing",
    "returns": "Returns and discount sensitivity",
    "category": "Category mix",
    "channel": "Channel mix",
    "engagement": "Engagement (behaviour events)",
    "satisfaction": "Satisfaction (feedback)",
    "loyalty": "Loyalty and campaign response",
    "clv": "Lifetime value and churn risk (a BTYD model chosen on a holdout + Gamma-Gamma)",
    "value": "Customer-value profile (benefit minus sacrifice)",
    "profile": "Customer attributes",
}

T, C, E, F = "transactions", "customers", "events", "feedback"

CATALOG: tuple[Feature, ...] = (
    # rfm -------------------------------------------------------------------------------------
    Feature(
        "recency_days",
        "rfm",
        "Days since last purchase",
        "days from the last purchase (order with positive value) to the as-of date",
        "days",
        (T,),
        higher_is="worse",
        fmt="{:,.0f}",
    ),
    Feature(
        "frequency",
        "rfm",
        "Orders",
        "number of distinct orders with positive value before the as-of date",
        "orders",
        (T,),
        higher_is="better",
        fmt="{:,.1f}",
    ),
    Feature(
        "monetary",
        "rfm",
        "Net spend",
        "sum of line amounts before the as-of date, returns netted (negative lines subtract)",
        "currency",
        (T,),
        higher_is="better",
        fmt="{:,.0f}",
    ),
    Feature(
        "tenure_days",
        "rfm",
        "Tenure",
        "days from the first purchase to the as-of date",
        "days",
        (T,),
        fmt="{:,.0f}",
    ),
    Feature(
        "orders_per_month",
        "rfm",
        "Orders per month",
        "frequency divided by tenure in months (at least one month), i.e. purchase rate",
        "orders/month",
        (T,),
        higher_is="better",
        fmt="{:,.2f}",
    ),
    # order value and timing ------------------------------------------------------------------
    Feature(
        "avg_order_value",
        "order",
        "Average order value",
        "gross value of purchase orders divided by their number",
        "currency",
        (T,),
        higher_is="better",
        fmt="{:,.0f}",
    ),
    Feature(
        "items_per_order",
        "order",
        "Items per order",
        "mean units bought per purchase order",
        "units",
        (T,),
        fmt="{:,.1f}",
    ),
    Feature(
        "mean_days_between",
        "order",
        "Days between purchases",
        "mean gap in days between consecutive purchase days (days with a positive-value line, "
        "as BG/NBD counts them; needs two purchase days)",
        "days",
        (T,),
        fmt="{:,.0f}",
    ),
    Feature(
        "purchase_regularity",
        "order",
        "Purchase regularity",
        "1 / (1 + coefficient of variation of the gaps between purchase days); 1 = "
        "clockwork, near 0 = erratic (needs three purchase days)",
        "index 0..1",
        (T,),
        fmt="{:.2f}",
    ),
    # returns and discounts -------------------------------------------------------------------
    Feature(
        "return_rate",
        "returns",
        "Return rate",
        "value of returned or cancelled lines divided by gross purchased value",
        "share",
        (T,),
        higher_is="worse",
        fmt="{:.0%}",
    ),
    Feature(
        "discount_share",
        "returns",
        "Discount share",
        "discounts received divided by list value (amount + discount) of purchases",
        "share",
        (T,),
        fmt="{:.0%}",
    ),
    Feature(
        "discounted_order_share",
        "returns",
        "Orders with a discount",
        "share of purchase orders with any discount",
        "share",
        (T,),
        fmt="{:.0%}",
    ),
    # category mix (dynamic share columns are added per top category) -------------------------
    Feature(
        "category_diversity",
        "category",
        "Category diversity",
        "normalised entropy of spend over categories: 0 = one category, 1 = evenly spread",
        "index 0..1",
        (T,),
        fmt="{:.2f}",
    ),
    # engagement --------------------------------------------------------------------------------
    Feature(
        "email_open_rate",
        "engagement",
        "E-mail open rate",
        "e-mail opens divided by e-mails sent (capped at 1)",
        "share",
        (E,),
        higher_is="better",
        fmt="{:.0%}",
    ),
    Feature(
        "email_click_rate",
        "engagement",
        "E-mail click rate",
        "e-mail clicks divided by e-mails sent (capped at 1)",
        "share",
        (E,),
        higher_is="better",
        fmt="{:.0%}",
    ),
    Feature(
        "sessions_90d",
        "engagement",
        "Sessions (90 days)",
        "distinct web/app sessions in the 90 days before the as-of date",
        "sessions",
        (E,),
        higher_is="better",
        fmt="{:,.1f}",
    ),
    Feature(
        "app_session_share",
        "engagement",
        "App share of sessions",
        "share of sessions that were app sessions",
        "share",
        (E,),
        fmt="{:.0%}",
    ),
    Feature(
        "cart_abandonment_rate",
        "engagement",
        "Cart abandonment",
        "share of add-to-cart events not followed by a checkout in the same session "
        "(1 - checkouts / add-to-carts, floored at 0)",
        "share",
        (E,),
        higher_is="worse",
        fmt="{:.0%}",
    ),
    Feature(
        "support_contacts_365d",
        "engagement",
        "Support contacts (year)",
        "support tickets in the 365 days before the as-of date",
        "contacts",
        (E,),
        higher_is="worse",
        fmt="{:,.1f}",
    ),
    # satisfaction ------------------------------------------------------------------------------
    Feature(
        "nps_latest",
        "satisfaction",
        "Latest NPS score",
        "most recent 0-10 likelihood-to-recommend answer",
        "points 0..10",
        (F,),
        higher_is="better",
        fmt="{:.1f}",
    ),
    Feature(
        "csat_mean",
        "satisfaction",
        "Mean CSAT",
        "mean satisfaction rescaled to 0..1 (score / scale_max)",
        "share",
        (F,),
        higher_is="better",
        fmt="{:.0%}",
    ),
    Feature(
        "review_mean",
        "satisfaction",
        "Mean review score",
        "mean review rescaled to 0..1",
        "share",
        (F,),
        higher_is="better",
        fmt="{:.0%}",
    ),
    Feature(
        "nps_class",
        "satisfaction",
        "NPS class",
        "promoter (9-10), passive (7-8) or detractor (0-6) from the latest NPS answer",
        "class",
        (F,),
        segment=False,
        kind="categorical",
        fmt="{}",
    ),
    # loyalty -----------------------------------------------------------------------------------
    Feature(
        "loyalty_member",
        "loyalty",
        "Loyalty member",
        "1 if enrolled in the loyalty programme (customers table), else 0",
        "flag",
        (C,),
        higher_is="better",
        fmt="{:.0%}",
    ),
    Feature(
        "coupon_redemptions",
        "loyalty",
        "Coupons redeemed",
        "coupon_redeem events before the as-of date",
        "coupons",
        (E,),
        fmt="{:,.1f}",
    ),
    Feature(
        "campaign_response_rate",
        "loyalty",
        "Campaign response",
        "share of campaign contacts followed by a purchase (a positive-value line) within 14 days",
        "share",
        (E, T),
        higher_is="better",
        fmt="{:.0%}",
    ),
    # clv (filled from personas.features.btyd) -----------------------------------------------
    Feature(
        "p_alive",
        "clv",
        "P(alive)",
        "probability that the customer is still active, under the chosen drop-out model "
        "(left out when the chosen model has no drop-out)",
        "probability",
        (T,),
        segment=False,
        higher_is="better",
        fmt="{:.1%}",
    ),
    Feature(
        "churn_risk",
        "clv",
        "Churn risk",
        "1 - P(alive)",
        "probability",
        (T,),
        segment=False,
        higher_is="worse",
        fmt="{:.1%}",
    ),
    Feature(
        "expected_purchases_90d",
        "clv",
        "Expected purchases (90 days)",
        "the chosen model's conditional expected purchases in the next 90 days",
        "orders",
        (T,),
        segment=False,
        fmt="{:,.2f}",
    ),
    Feature(
        "expected_purchases_365d",
        "clv",
        "Expected purchases (365 days)",
        "the chosen model's conditional expected purchases in the next 365 days",
        "orders",
        (T,),
        segment=False,
        fmt="{:,.2f}",
    ),
    Feature(
        "expected_days_to_next_purchase",
        "clv",
        "Expected days to next purchase",
        "if still active: the mean wait E[1/rate] under the chosen model's posterior purchase "
        "rate, in calendar days (blank for one-purchase customers)",
        "days",
        (T,),
        segment=False,
        higher_is="worse",
        fmt="{:,.0f}",
    ),
    Feature(
        "clv_12m",
        "clv",
        "12-month CLV",
        "expected purchases over 12 months x Gamma-Gamma expected order value, discounted "
        "at 10% a year",
        "currency",
        (T,),
        segment=False,
        higher_is="better",
        fmt="{:,.0f}",
    ),
    # profile (categorical, shown in profiles, not clustered) ----------------------------------
    Feature(
        "country",
        "profile",
        "Country",
        "country from the customers table",
        "label",
        (C,),
        segment=False,
        kind="categorical",
        fmt="{}",
    ),
    Feature(
        "region",
        "profile",
        "Region",
        "region / area type",
        "label",
        (C,),
        segment=False,
        kind="categorical",
        fmt="{}",
    ),
    Feature(
        "age_band",
        "profile",
        "Age band",
        "age band",
        "label",
        (C,),
        segment=False,
        kind="categorical",
        fmt="{}",
    ),
    Feature(
        "income_band",
        "profile",
        "Income band",
        "income band",
        "label",
        (C,),
        segment=False,
        kind="categorical",
        fmt="{}",
    ),
    Feature(
        "household",
        "profile",
        "Household",
        "household composition",
        "label",
        (C,),
        segment=False,
        kind="categorical",
        fmt="{}",
    ),
    Feature(
        "loyalty_tier",
        "profile",
        "Loyalty tier",
        "loyalty tier",
        "label",
        (C,),
        segment=False,
        kind="categorical",
        fmt="{}",
    ),
)

BY_NAME = {f.name: f for f in CATALOG}

CATEGORY_PREFIX = "cat_share__"
VIEW_PREFIX = "view_share__"
CHANNEL_PREFIX = "chan_share__"


@dataclass(frozen=True)
class ValueDimension:
    """One customer-value index: what the customer gets (benefits) minus what it costs them.

    The index itself is computed in SQL (:func:`personas.features.value.value_sql`); its name,
    label and meaning live here so that reports read them without the engine.
    """

    name: str
    label: str
    meaning: str
    benefits: tuple[str, ...]
    sacrifices: tuple[str, ...]

    def feature(self) -> Feature:
        return Feature(
            f"value_{self.name}",
            "value",
            self.label,
            f"{self.meaning}: mean percentile of ({', '.join(self.benefits)}) minus mean "
            f"percentile of ({', '.join(self.sacrifices) or 'none'})",
            "index -1..1",
            ("transactions",),
            segment=False,
            higher_is="better",
            fmt="{:+.2f}",
        )


VALUE_DIMENSIONS: dict[str, ValueDimension] = {
    d.name: d
    for d in (
        ValueDimension(
            "economic",
            "Economic value",
            "money saved versus money spent per order",
            ("discount_share", "discounted_order_share", "coupon_redemptions"),
            ("avg_order_value",),
        ),
        ValueDimension(
            "functional",
            "Functional value",
            "needs met (repeat buying across categories) versus friction",
            ("orders_per_month", "category_diversity", "purchase_regularity"),
            ("return_rate", "cart_abandonment_rate", "support_contacts_365d"),
        ),
        ValueDimension(
            "emotional",
            "Emotional value",
            "how customers feel about the experience versus the trouble they had",
            ("nps_latest", "csat_mean", "review_mean"),
            ("support_contacts_365d", "return_rate"),
        ),
        ValueDimension(
            "symbolic",
            "Symbolic value",
            "identification with the brand versus a fading relationship",
            ("loyalty_member", "email_click_rate", "tenure_days"),
            ("recency_days",),
        ),
    )
}


def slug(s: str) -> str:
    """Column-name form of a category or channel (``"Home & Garden"`` -> ``home_garden``).

    The share columns are named from the data's own values, so the rule that names them is the
    catalogue's: the SQL names the columns with it, reports map them back to the original names.
    """
    out = re.sub(r"[^0-9a-zA-Z]+", "_", s.strip().lower()).strip("_")
    return out or "unknown"


def lookup(name: str) -> Feature:
    """Catalogue entry of a feature, including the dynamic category/channel share columns."""
    if name in BY_NAME:
        return BY_NAME[name]
    if name.startswith(CATEGORY_PREFIX):
        cat = name.removeprefix(CATEGORY_PREFIX)
        return Feature(
            name,
            "category",
            f"Share of spend: {cat}",
            f"share of gross spend in category '{cat}'",
            "share",
            ("transactions",),
            fmt="{:.0%}",
        )
    if name.startswith(VIEW_PREFIX):
        cat = name.removeprefix(VIEW_PREFIX)
        return Feature(
            name,
            "engagement",
            f"Share of product views: {cat}",
            f"share of product views (events) in category '{cat}'; a browsing signal that "
            "prospects have too, used for likely personas rather than for segmenting",
            "share",
            ("events",),
            segment=False,
            fmt="{:.0%}",
        )
    if name.startswith(CHANNEL_PREFIX):
        ch = name.removeprefix(CHANNEL_PREFIX)
        return Feature(
            name,
            "channel",
            f"Share of orders: {ch}",
            f"share of purchase orders placed through channel '{ch}'",
            "share",
            ("transactions",),
            fmt="{:.0%}",
        )
    if name.startswith("value_") and name.removeprefix("value_") in VALUE_DIMENSIONS:
        return VALUE_DIMENSIONS[name.removeprefix("value_")].feature()
    raise KeyError(f"unknown feature {name!r}")


def label(name: str, names: dict[str, str] | None = None) -> str:
    """Display label; ``names`` maps share columns to the data's own category/channel names."""
    if names and name in names:
        if name.startswith(CATEGORY_PREFIX):
            return f"Share of spend: {names[name]}"
        if name.startswith(CHANNEL_PREFIX):
            return f"Share of orders: {names[name]}"
        if name.startswith(VIEW_PREFIX):
            return f"Share of product views: {names[name]}"
    try:
        return lookup(name).label
    except KeyError:
        return name.replace("_", " ")


def display_names(catalog: dict) -> dict[str, str]:
    """Share column -> original category/channel name, from a features ``catalog.json``."""
    out = {CATEGORY_PREFIX + slug(c): c for c in catalog.get("categories", [])}
    out.update({CHANNEL_PREFIX + slug(c): c for c in catalog.get("channels", [])})
    out.update({VIEW_PREFIX + slug(c): c for c in catalog.get("view_categories", [])})
    return out
