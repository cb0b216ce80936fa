"""Plain-language persona names and descriptions, built deterministically from the traits.

A name is "<qualifier> <preference> <noun>", e.g. "Loyal high-value home shoppers": the
qualifier comes from value, loyalty or lifecycle, the preference from the category or channel
a persona over-indexes on, the noun from satisfaction or price sensitivity. The same profile
always gets the same name, and names are made unique within a run by adding the next trait.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from personas.features.catalog import CATEGORY_PREFIX, CHANNEL_PREFIX


@dataclass
class PersonaStats:
    """What naming needs to know of one persona (ratios are persona mean / population mean)."""

    index: int
    share: float
    ratios: dict[str, float]
    means: dict[str, float]
    pop_means: dict[str, float]
    effects: dict[str, float]
    names: dict[str, str] = field(default_factory=dict)

    def ratio(self, feature: str) -> float:
        """Persona mean / population mean; 1 (average) when unknown."""
        v = self.ratios.get(feature)
        return float(v) if v is not None and np.isfinite(v) else 1.0

    def effect(self, feature: str) -> float:
        """Effect size against everyone else; 0 when unknown."""
        v = self.effects.get(feature)
        return float(v) if v is not None and np.isfinite(v) else 0.0


def qualifiers(s: PersonaStats) -> list[str]:
    """Value / loyalty / lifecycle words, strongest evidence first.

    A word needs both a clear standardised difference and a visible ratio, so a name never
    rests on "1.1x the average".
    """
    cands: list[tuple[float, str]] = []
    if (s.effect("recency_days") > 0.5 and s.ratio("recency_days") >= 1.3) or s.ratio(
        "churn_risk"
    ) > 1.5:
        cands.append((max(s.effect("recency_days"), 0.6), "lapsing"))
    vf = max(("monetary", "clv_12m"), key=lambda f: s.effect(f))
    value = s.effect(vf)
    if value > 0.5 and s.ratio(vf) >= 1.25:
        cands.append((value, "high-value"))
    low = min(("monetary", "clv_12m"), key=lambda f: s.effect(f))
    if s.effect(low) < -0.5 and s.ratio(low) <= 0.8:
        cands.append((-s.effect(low) * 0.8, "low-spend"))
    lf = max(("frequency", "orders_per_month"), key=lambda f: s.effect(f))
    loyal = s.effect(lf)
    if loyal > 0.5 and s.ratio(lf) >= 1.25 and s.effect("recency_days") < 0.3:
        cands.append((loyal, "loyal"))
    if loyal < -0.5 and s.effect("recency_days") < 0.5:
        cands.append((-loyal * 0.7, "occasional"))
    basket = max(s.effect("items_per_order"), s.effect("avg_order_value"))
    if (
        basket > 0.5
        and max(s.ratio("items_per_order"), s.ratio("avg_order_value")) >= 1.25
        and "high-value" not in [w for _, w in cands]
    ):
        cands.append((basket * 0.8, "big-basket"))
    if s.effect("tenure_days") < -0.6:
        cands.append((-s.effect("tenure_days"), "new"))
    if s.effect("discount_share") > 0.5 or s.effect("coupon_redemptions") > 0.5:
        cands.append(
            (max(s.effect("discount_share"), s.effect("coupon_redemptions")), "deal-seeking")
        )
    if s.effect("return_rate") > 0.5:
        cands.append((s.effect("return_rate"), "high-return"))
    if s.effect("nps_latest") < -0.5 or s.effect("csat_mean") < -0.5:
        cands.append((-min(s.effect("nps_latest"), s.effect("csat_mean")), "unhappy"))
    if s.effect("email_click_rate") > 0.6:
        cands.append((s.effect("email_click_rate") * 0.9, "engaged"))
    cands.sort(key=lambda c: (-c[0], c[1]))
    return [w for _, w in cands] or ["everyday"]


def preferences(s: PersonaStats) -> list[str]:
    """Category or channel the persona over-indexes on."""
    prefs: list[tuple[float, str]] = []
    for f in s.effects:
        if f.startswith(CATEGORY_PREFIX) and s.effect(f) > 0.4 and s.ratio(f) > 1.3:
            cat = s.names.get(f) or f.removeprefix(CATEGORY_PREFIX).replace("_", " ")
            prefs.append((s.effect(f), _clean_label(cat)))
        if f.startswith(CHANNEL_PREFIX) and s.effect(f) > 0.4 and s.ratio(f) > 1.3:
            ch = s.names.get(f) or f.removeprefix(CHANNEL_PREFIX)
            prefs.append((s.effect(f) * 0.9, _clean_label(ch) + "-first"))
    if s.effect("app_session_share") > 0.5:
        prefs.append((s.effect("app_session_share"), "app-first"))
    prefs.sort(key=lambda p: (-p[0], p[1]))
    return [p for _, p in prefs if p and p != "-first"]


def _clean_label(text: str, limit: int = 24) -> str:
    """A category or channel name fit for a persona name: plain characters, short.

    The names come from the data (anything can be a category); report and cards escape them,
    but a persona name should read like a name, not like markup.
    """
    import re

    t = re.sub(r"[^0-9A-Za-zÀ-ÿ&' /-]+", " ", text).strip().lower()
    t = re.sub(r"\s+", " ", t)
    if len(t) > limit:
        t = t[:limit].rsplit(" ", 1)[0]
    return t


def noun(s: PersonaStats) -> str:
    if s.effect("nps_latest") < -0.6:
        return "critics"
    if s.effect("discount_share") > 0.8:
        return "bargain hunters"
    if s.effect("category_diversity") > 0.6:
        return "all-rounders"
    return "shoppers"


def make_names(stats: list[PersonaStats]) -> dict[int, str]:
    """Unique, deterministic names for all personas of a run."""
    names: dict[int, str] = {}
    used: set[str] = set()
    for s in sorted(stats, key=lambda x: (-x.share, x.index)):
        q = qualifiers(s)
        p = preferences(s)
        n = noun(s)
        options = []
        for i in range(len(q)):
            base = q[i]
            if p:
                options.append(f"{base} {p[0]} {n}")
            options.append(f"{base} {n}")
        for qi in q[:2]:
            for pj in p[1:3]:
                options.append(f"{qi} {pj} {n}")
        if len(q) > 1:
            options.insert(0 if not p else len(options), f"{q[0]} {q[1]} {n}")
        chosen = next((o for o in options if o.lower() not in used), None)
        if chosen is None:
            k = 2
            while f"{options[0]} ({k})".lower() in used:
                k += 1
            chosen = f"{options[0]} ({k})"
        used.add(chosen.lower())
        names[s.index] = chosen[0].upper() + chosen[1:]
    return names


def describe(
    name: str, share: float, size: int, trait_texts: list[str], headline: dict[str, str]
) -> str:
    """Two sentences: who they are and what sets them apart."""
    who = f"{name} are {share:.0%} of customers ({size:,})"
    facts = [f"{k} {v}" for k, v in headline.items()]
    first = who + (", with " + ", ".join(facts[:3]) if facts else "") + "."
    if trait_texts:
        second = (
            "What sets them apart: "
            + "; ".join(t[0].lower() + t[1:] for t in trait_texts[:3])
            + "."
        )
    else:
        second = "They are close to the average customer on every feature."
    return f"{first} {second}"
