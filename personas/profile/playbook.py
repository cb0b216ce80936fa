"""The recommended-actions playbook: which marketing move fits which persona, and why.

Each play has a trigger on the persona's traits (effect sizes versus everyone else and
ratios to the population) and a plain-language reason naming the trait that fired it, so a
marketer can see why the tool recommends it and overrule it. The plays follow the customer
journey of the founding documents: onboard, reward, grow, win back, recover, delight.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from personas.profile.naming import PersonaStats


@dataclass(frozen=True)
class Play:
    key: str
    title: str
    what: str
    trigger: str
    fires: Callable[[PersonaStats], tuple[bool, str]]


def _ratio_text(s: PersonaStats, f: str, what: str) -> str:
    r = s.ratio(f)
    return f"{what} {r:.1f}x the average" if r >= 1 else f"{what} {1 - r:.0%} below average"


def _onboarding(s: PersonaStats) -> tuple[bool, str]:
    new = s.effect("tenure_days") < -0.5
    return new, (_ratio_text(s, "tenure_days", "tenure") + ": still early in the relationship")


def _loyalty(s: PersonaStats) -> tuple[bool, str]:
    f = max(("frequency", "orders_per_month"), key=lambda x: s.effect(x))
    # new customers buying fast get onboarding, not a loyalty reward
    ok = s.effect(f) > 0.5 and s.effect("recency_days") < 0.2 and s.effect("tenure_days") > -0.3
    what = "orders" if f == "frequency" else "purchase rate"
    return ok, _ratio_text(s, f, what) + ", and bought recently"


def _cross_sell(s: PersonaStats) -> tuple[bool, str]:
    ok = s.effect("category_diversity") < -0.4 and s.effect("recency_days") < 0.5
    return ok, (
        _ratio_text(s, "category_diversity", "category diversity")
        + ": active but buying in few categories"
    )


def _win_back(s: PersonaStats) -> tuple[bool, str]:
    ok = (s.effect("recency_days") > 0.5 and s.ratio("recency_days") >= 1.3) or (
        s.effect("churn_risk") > 0.5 and s.ratio("churn_risk") >= 1.3
    )
    text = _ratio_text(s, "recency_days", "days since last purchase")
    if "churn_risk" in s.ratios and s.ratio("churn_risk") > 1.1:
        text += f", churn risk {s.ratio('churn_risk'):.1f}x"
    return ok, text


def _service_recovery(s: PersonaStats) -> tuple[bool, str]:
    nps = s.effect("nps_latest")
    ok = nps < -0.5 or s.effect("support_contacts_365d") > 0.5 or s.effect("return_rate") > 0.6
    parts = []
    if nps < -0.5:
        parts.append(
            f"latest NPS {s.means.get('nps_latest', float('nan')):.1f} vs "
            f"{s.pop_means.get('nps_latest', float('nan')):.1f} overall"
        )
    if s.effect("support_contacts_365d") > 0.5:
        parts.append(_ratio_text(s, "support_contacts_365d", "support contacts"))
    if s.effect("return_rate") > 0.6:
        parts.append(_ratio_text(s, "return_rate", "return rate"))
    return ok, "; ".join(parts) or "satisfaction below average"


def _surprise(s: PersonaStats) -> tuple[bool, str]:
    v = max(s.effect("monetary"), s.effect("clv_12m"))
    ok = v > 0.8
    text = _ratio_text(s, "monetary", "net spend")
    if "clv_12m" in s.ratios:
        text += f", 12-month CLV {s.ratio('clv_12m'):.1f}x"
    return ok, text


def _frequency(s: PersonaStats) -> tuple[bool, str]:
    f = min(("orders_per_month", "frequency"), key=lambda x: s.effect(x))
    lapsing = s.effect("recency_days") > 0.5 and s.ratio("recency_days") >= 1.3  # win-back's case
    ok = s.effect(f) < -0.5 and s.ratio(f) <= 0.8 and not lapsing and s.effect("tenure_days") > -0.3
    return ok, _ratio_text(
        s, f, "purchase rate" if f == "orders_per_month" else "orders"
    ) + ", while still buying"


def _deal(s: PersonaStats) -> tuple[bool, str]:
    ok = s.effect("discount_share") > 0.5 or s.effect("coupon_redemptions") > 0.5
    if (
        s.effect("discount_share") >= s.effect("coupon_redemptions")
        and "discount_share" in s.ratios
    ):
        return ok, _ratio_text(s, "discount_share", "discount share")
    return ok, _ratio_text(s, "coupon_redemptions", "coupons redeemed")


PLAYBOOK: tuple[Play, ...] = (
    Play(
        "service_recovery",
        "Service recovery",
        "Reach out personally, fix the open issue, then ask again how we did.",
        "detractor NPS, many support contacts or a high return rate",
        _service_recovery,
    ),
    Play(
        "win_back",
        "Win-back",
        "A time-limited reason to return (new range, reminder of favourites); stop if "
        "there is no response after two contacts.",
        "long time since last purchase or high churn risk",
        _win_back,
    ),
    Play(
        "positive_surprise",
        "Positive surprise for the most valuable",
        "An unexpected gift, early access or a personal thank-you, without a sales ask.",
        "net spend or CLV far above average",
        _surprise,
    ),
    Play(
        "loyalty_reward",
        "Loyalty reward and thanks",
        "Recognise the habit: points boost, tier upgrade or a thank-you note.",
        "frequent and recent buying",
        _loyalty,
    ),
    Play(
        "cross_sell",
        "Personalised cross-sell",
        "Recommend complementary categories based on what they already buy.",
        "active buyers concentrated in few categories",
        _cross_sell,
    ),
    Play(
        "frequency_nudge",
        "Second-occasion nudge",
        "Remind them between their rare purchases: replenishment, seasonal previews, "
        "wish-list alerts.",
        "low purchase rate among active customers",
        _frequency,
    ),
    Play(
        "onboarding",
        "Onboarding journey",
        "Welcome series: how to get the most out of the first purchases, second-order incentive.",
        "short tenure",
        _onboarding,
    ),
    Play(
        "deal_alerts",
        "Deal alerts instead of blanket discounts",
        "Target price-sensitive customers with alerts so full-price buyers are not discounted.",
        "high discount share or coupon use",
        _deal,
    ),
)


# Plays that would be tone-deaf next to service recovery: fix the problem before selling more.
NOT_WITH_RECOVERY = {"cross_sell", "deal_alerts", "loyalty_reward", "frequency_nudge"}


def recommend(s: PersonaStats, limit: int = 3) -> list[dict[str, str]]:
    """Plays that fire for a persona, in playbook order (most urgent first)."""
    out: list[dict[str, str]] = []
    for play in PLAYBOOK:
        fired, why = play.fires(s)
        if (
            fired
            and play.key in NOT_WITH_RECOVERY
            and any(a["key"] == "service_recovery" for a in out)
        ):
            continue
        if fired:
            out.append({"key": play.key, "title": play.title, "what": play.what, "because": why})
        if len(out) >= limit:
            break
    if not out:
        out.append(
            {
                "key": "nurture",
                "title": "Nurture",
                "what": "Keep them in the regular newsletter; test content by category.",
                "because": "no single trait calls for a specific play",
            }
        )
    return out
