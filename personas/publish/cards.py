"""Persona cards: one Markdown and one printable HTML page per persona.

A card is what a marketer forwards, prints or pastes into a brief: name, share, who they are,
defining traits and rules (with the rules' fidelity), key metrics against the average, the
customer-value profile and the recommended actions with their reasons. Both formats are made
from the same context (:func:`card_context`, built on
:func:`personas.publish.report.persona_view`), so they never disagree with each other or
with the report.

Escaping. The HTML card is rendered with Jinja ``autoescape=True``. Markdown has no
autoescaping of its own, so the Markdown environment escapes every ``{{ value }}`` through
Jinja's ``finalize`` hook (:func:`md_escape`): HTML-significant characters become entities
(a category named ``<script>`` stays text in any Markdown renderer) and Markdown punctuation is
backslash-escaped (a persona trait cannot turn into a link, a table cell break or a heading).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from personas.publish import plots
from personas.publish.kpis import card_rows
from personas.publish.report import persona_view
from personas.publish.whatworks import add_campaigns

CARD_METRICS = (
    "monetary",
    "clv_12m",
    "frequency",
    "avg_order_value",
    "recency_days",
    "churn_risk",
    "return_rate",
    "discount_share",
    "nps_latest",
    "csat_mean",
    "email_open_rate",
    "loyalty_member",
)
_MD_PUNCT = re.compile(r"([\\`*_\[\]|#~])")
_ENTITY_LIKE = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
_BLOCK_START = re.compile(r"^(?:[-+]\s|=+\s*$)")
_ORDERED_START = re.compile(r"^(\d+)[.)]\s")


class MdSafe(str):
    """Text already valid as Markdown (e.g. a nested list we built): not escaped again."""


def md_escape(value: Any) -> str:
    """Escape text for Markdown so that it renders as the same literal text everywhere.

    ``<``/``>`` become entities (universally safe, unlike CommonMark's ``\\<``), Markdown
    punctuation gets a backslash, and line breaks become spaces so a value cannot start a new
    block. ``None`` renders as an empty string.
    """
    if value is None:
        return ""
    if isinstance(value, MdSafe):
        return value
    s = str(value).replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    s = _ENTITY_LIKE.sub("&amp;", s)
    s = _MD_PUNCT.sub(r"\\\1", s)
    s = s.replace("<", "&lt;").replace(">", "&gt;")
    # a value must not start a list item or a setext underline when it begins a line
    m = _ORDERED_START.match(s)
    if m:
        s = f"{m.group(1)}\\{s[m.end(1) :]}"
    elif _BLOCK_START.match(s):
        s = "\\" + s
    return s


def card_context(
    profiles: Mapping[str, Any],
    persona: Mapping[str, Any],
    uplift: Mapping[str, Any] | None = None,
    kpis: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything a card shows, as display-ready strings (no markup).

    ``uplift`` is the run's campaign table: the card then lists what each measured message
    did for the persona, and the actions start with the tested ones. ``kpis`` is the run's
    KPI block (``metrics.json``): the card then shows the persona's retention, observed churn
    next to modelled churn risk, CLV, NPS, CSAT and loyalty participation beside all
    customers' (:func:`personas.publish.kpis.card_rows`).
    """
    keys = [m for m in CARD_METRICS if m in persona["metrics"]]
    view = persona_view(profiles, persona, metric_keys=keys)
    add_campaigns(view, uplift)
    return {
        "p": view,
        "as_of": profiles.get("as_of") or "unknown date",
        "customers": f"{profiles['population']['customers']:,}",
        "min_size": profiles["min_persona_size"],
        "overall_fidelity": _pct(profiles["rules"].get("fidelity")),
        "colour": plots.persona_colour(persona["id"]),
        "kpi": card_rows(kpis, persona, int(profiles["min_persona_size"])),
    }


def render_markdown(
    profiles: Mapping[str, Any],
    persona: Mapping[str, Any],
    uplift: Mapping[str, Any] | None = None,
    kpis: Mapping[str, Any] | None = None,
) -> str:
    """The Markdown card of one persona."""
    ctx = card_context(profiles, persona, uplift, kpis)
    return _md_env().get_template("card.md.j2").render(**ctx)


def render_html(
    profiles: Mapping[str, Any],
    persona: Mapping[str, Any],
    uplift: Mapping[str, Any] | None = None,
    kpis: Mapping[str, Any] | None = None,
) -> str:
    """The printable, self-contained HTML card of one persona (no script, no external URL)."""
    ctx = card_context(profiles, persona, uplift, kpis)
    return _html_env().get_template("card.html.j2").render(**ctx)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"


@cache
def _md_env() -> Environment:
    return Environment(
        loader=PackageLoader("personas.publish", "templates"),
        autoescape=False,
        finalize=md_escape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@cache
def _html_env() -> Environment:
    return Environment(
        loader=PackageLoader("personas.publish", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
