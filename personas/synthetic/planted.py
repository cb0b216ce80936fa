"""The ground truth the synthetic retailer plants: six personas, and how far customers stray.

A persona is the centre of its customers' behaviour parameters; each customer is drawn around one.
Category and channel mixes follow :data:`CATEGORIES` and :data:`CHANNELS`, the vocabularies the
exports use. Changing anything here changes every file the generator writes for a seed, and what
the recovery tests expect.
"""

from __future__ import annotations

from dataclasses import dataclass

CATEGORIES = ("fashion", "home", "electronics", "beauty", "kids", "sports", "grocery", "books")
CHANNELS = ("web", "app", "store", "phone")
NOISE_LEVELS = {"clean": 0.15, "noisy": 0.45}


@dataclass(frozen=True)
class PlantedPersona:
    """A planted persona: the centre of its customers' behaviour parameters.

    Rates are per year of activity, probabilities are per order line, order, e-mail or session as
    named; ``category_mix`` follows :data:`CATEGORIES`, ``channel_mix`` follows :data:`CHANNELS`.
    """

    name: str
    share: float
    description: str
    orders_per_year: float
    lines_per_order: float
    price_level: float  # quantile of the category's price ladder the customer buys at
    extra_units: float  # mean units per line beyond the first
    discount_rate: float  # P(line discounted) outside sale periods
    promo_affinity: float  # P(an order is timed by the sale calendar)
    return_rate: float  # P(line returned), before the category's return propensity
    ipt_cv: float  # coefficient of variation of the gaps between orders (1 = Poisson)
    category_mix: tuple[float, ...]
    channel_mix: tuple[float, ...]
    email_open: float
    email_click: float  # P(click | open)
    sessions_per_year: float
    cart_abandon: float  # P(a browsing session leaves a cart behind)
    tickets_per_year: float
    nps: float
    csat: float
    survey_rate: float
    loyalty: float  # P(loyalty member)
    coupon_rate: float  # P(a discounted order redeems a coupon)
    new_customer_share: float  # first seen inside the export window rather than before it
    years_known: tuple[float, float] = (0.05, 6.0)  # range of years known before the window
    lapsed: bool = False


# fmt: off
PLANTED_PERSONAS: tuple[PlantedPersona, ...] = (
    PlantedPersona(
        "loyal_high_value", 0.14,
        "Frequent, regular, full-price buyers with large baskets; gold tier; promoters.",
        orders_per_year=8.0, lines_per_order=2.0, price_level=0.8, extra_units=0.2,
        discount_rate=0.04, promo_affinity=0.05, return_rate=0.03, ipt_cv=0.35,
        category_mix=(0.32, 0.15, 0.05, 0.30, 0.02, 0.05, 0.01, 0.10),
        channel_mix=(0.50, 0.20, 0.27, 0.03), email_open=0.5, email_click=0.25,
        sessions_per_year=1.5, cart_abandon=0.12, tickets_per_year=0.08, nps=9.2, csat=4.7,
        survey_rate=0.5, loyalty=0.97, coupon_rate=0.15, new_customer_share=0.05,
        years_known=(1.0, 9.0),
    ),
    PlantedPersona(
        "bargain_hunter", 0.22,
        "Many small discounted orders timed by sales; redeem coupons; click e-mail offers.",
        orders_per_year=5.0, lines_per_order=1.6, price_level=0.2, extra_units=0.5,
        discount_rate=0.55, promo_affinity=0.6, return_rate=0.04, ipt_cv=1.2,
        category_mix=(0.20, 0.08, 0.03, 0.20, 0.08, 0.04, 0.35, 0.02),
        channel_mix=(0.55, 0.38, 0.065, 0.005), email_open=0.62, email_click=0.55,
        sessions_per_year=3.5, cart_abandon=0.45, tickets_per_year=0.12, nps=7.0, csat=4.0,
        survey_rate=0.3, loyalty=0.65, coupon_rate=0.4, new_customer_share=0.35,
    ),
    PlantedPersona(
        "lapsed_at_risk", 0.15,
        "Bought regularly early on, nothing in the last 9-15 months; ignore e-mails.",
        orders_per_year=4.5, lines_per_order=2.2, price_level=0.5, extra_units=0.3,
        discount_rate=0.12, promo_affinity=0.15, return_rate=0.05, ipt_cv=0.45,
        category_mix=(0.12, 0.10, 0.08, 0.05, 0.04, 0.28, 0.03, 0.30),
        channel_mix=(0.35, 0.05, 0.45, 0.15), email_open=0.07, email_click=0.08,
        sessions_per_year=1.0, cart_abandon=0.3, tickets_per_year=0.08, nps=5.5, csat=3.4,
        survey_rate=0.12, loyalty=0.35, coupon_rate=0.1, new_customer_share=0.1, lapsed=True,
    ),
    PlantedPersona(
        "app_first_tech", 0.15,
        "Buy electronics and gear in the app; many app sessions; few, pricier orders.",
        orders_per_year=3.0, lines_per_order=1.6, price_level=0.62, extra_units=0.1,
        discount_rate=0.08, promo_affinity=0.2, return_rate=0.06, ipt_cv=0.8,
        category_mix=(0.05, 0.04, 0.62, 0.03, 0.02, 0.16, 0.01, 0.07),
        channel_mix=(0.08, 0.88, 0.03, 0.01), email_open=0.22, email_click=0.25,
        sessions_per_year=7.0, cart_abandon=0.25, tickets_per_year=0.12, nps=7.6, csat=4.2,
        survey_rate=0.25, loyalty=0.4, coupon_rate=0.1, new_customer_share=0.4,
    ),
    PlantedPersona(
        "family_home", 0.24,
        "Large home, kids and grocery baskets in store and on the web; medium frequency.",
        orders_per_year=3.5, lines_per_order=3.0, price_level=0.35, extra_units=0.7,
        discount_rate=0.25, promo_affinity=0.15, return_rate=0.04, ipt_cv=0.5,
        category_mix=(0.06, 0.36, 0.03, 0.03, 0.34, 0.04, 0.13, 0.01),
        channel_mix=(0.22, 0.03, 0.72, 0.03), email_open=0.25, email_click=0.12,
        sessions_per_year=1.5, cart_abandon=0.15, tickets_per_year=0.1, nps=7.5, csat=4.2,
        survey_rate=0.35, loyalty=0.5, coupon_rate=0.35, new_customer_share=0.3,
    ),
    PlantedPersona(
        "unhappy_returner", 0.10,
        "Return much of what they buy (mostly fashion); support tickets; detractors.",
        orders_per_year=3.0, lines_per_order=2.2, price_level=0.5, extra_units=0.2,
        discount_rate=0.12, promo_affinity=0.15, return_rate=0.33, ipt_cv=0.9,
        category_mix=(0.60, 0.08, 0.15, 0.10, 0.02, 0.03, 0.01, 0.01),
        channel_mix=(0.62, 0.18, 0.12, 0.08), email_open=0.15, email_click=0.08,
        sessions_per_year=2.5, cart_abandon=0.4, tickets_per_year=1.6, nps=2.6, csat=1.9,
        survey_rate=0.6, loyalty=0.2, coupon_rate=0.1, new_customer_share=0.4,
    ),
)
# fmt: on


def noise_level(noise: str | float) -> float:
    """Named or numeric noise as a float in [0, 1]."""
    if isinstance(noise, str):
        if noise not in NOISE_LEVELS:
            raise ValueError(f"noise={noise!r}; expected one of {sorted(NOISE_LEVELS)} or a float")
        return NOISE_LEVELS[noise]
    level = float(noise)
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"noise={noise!r} must lie in [0, 1]")
    return level
