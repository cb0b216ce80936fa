"""Plain-language lines from the uplift table: per-persona results and tested-message advice.

The playbook recommends a message for a persona only where a randomised test showed that it
raised the response (the uplift interval lies above zero), warns where one lowered it (the
interval lies below zero), and says nothing causal about campaigns without a control arm.
Report, cards and notebooks share these sentences so they never disagree.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

OUTCOME_WORDS = {"visit": "visit rate", "conversion": "conversion rate"}


def pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def pp(x: float | None, digits: int = 1) -> str:
    """Percentage points with a sign (an uplift)."""
    return "n/a" if x is None else f"{100 * x:+.{digits}f} pp"


def interval(cell: Mapping[str, Any]) -> str:
    lo, hi = cell.get("low"), cell.get("high")
    if lo is None or hi is None:
        return "n/a"
    return f"{100 * lo:+.1f} to {100 * hi:+.1f} pp"


def persona_rows(uplift: Mapping[str, Any] | None, persona_id: str) -> Iterator[tuple[dict, dict]]:
    """(campaign, row) for every published row about ``persona_id``."""
    for camp in (uplift or {}).get("campaigns", []):
        for row in camp["rows"]:
            if row["persona_id"] == persona_id:
                yield camp, row


def result_line(camp: Mapping[str, Any], row: Mapping[str, Any], response: str) -> str:
    """One sentence: the variant's response in this persona, with its uplift and interval."""
    cell = row[response]
    word = OUTCOME_WORDS[response]
    head = f"{row['variant']} ({camp['campaign']}): {word} {pct(cell['rate_treatment'])}"
    if not camp["causal"]:
        return f"{head} among contacted customers (no control group: not causal)"
    small = "; small cell, read with care" if row.get("small_cell") else ""
    return (
        f"{head} vs {pct(cell['rate_control'])} without it, uplift {pp(cell['uplift'])} "
        f"(95% CI {interval(cell)}): {row['verdict']}{small}"
    )


def persona_lines(uplift: Mapping[str, Any] | None, persona_id: str) -> list[str]:
    """What every measured message did for one persona (cards, report)."""
    if not uplift:
        return []
    response = uplift.get("response", "conversion")
    return [result_line(c, r, response) for c, r in persona_rows(uplift, persona_id)]


def tested_actions(uplift: Mapping[str, Any] | None, persona_id: str) -> list[dict[str, str]]:
    """Playbook entries from randomised tests: recommend what raised, warn about what lowered.

    Only causal rows whose interval excludes zero give an entry; the rest are not advice.
    """
    if not uplift:
        return []
    response = uplift.get("response", "conversion")
    word = OUTCOME_WORDS[response]
    out = []
    for camp, row in persona_rows(uplift, persona_id):
        if not camp["causal"] or row["verdict"] not in ("raised", "lowered"):
            continue
        cell = row[response]
        evidence = (
            f"in the randomised test {camp['campaign']} it changed the {word} by "
            f"{pp(cell['uplift'])} against the control group (95% CI {interval(cell)}, "
            f"{row['n_treatment']:,} contacted, {row['n_control']:,} held out); "
            "the interval excludes zero"
        )
        if row["verdict"] == "raised":
            out.append(
                {
                    "kind": "recommend",
                    "action": f"Send the tested message '{row['variant']}'",
                    "why": evidence,
                }
            )
        else:
            out.append(
                {
                    "kind": "warn",
                    "action": f"Do not send '{row['variant']}': it lowered the response",
                    "why": evidence,
                }
            )
    return out
