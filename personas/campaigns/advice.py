"""Plain-language lines from the uplift table: per-persona results and tested-message advice.

The playbook recommends a message for a persona only where a randomised test showed that it
raised the response (the uplift interval lies above zero), warns where one lowered it (the
interval lies below zero), and says nothing causal about campaigns without a control arm.
Report, cards and notebooks share these sentences so they never disagree, and
:func:`apply_to_profiles` writes the same advice into ``profiles.json`` (each persona's
``tested_messages`` and its playbook ``actions``), so tools reading the profiles get it too.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

OUTCOME_WORDS = {"visit": "visit rate", "conversion": "conversion rate"}
# playbook action keys of tested advice in profiles.json, by tested_actions' kind
ACTION_KEYS = {"recommend": "tested_message", "warn": "message_warning"}
ACTION_TITLES = {"recommend": "Tested message", "warn": "Warning"}


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


def persona_rows(
    uplift: Mapping[str, Any] | None, persona_id: str, likely: bool = False
) -> Iterator[tuple[dict, dict]]:
    """(campaign, row) for every published row about ``persona_id``'s members.

    ``likely=True``: the rows about contacted prospects and first-time buyers *likely* to
    become the persona instead (never mixed with the members' rows).
    """
    for camp in (uplift or {}).get("campaigns", []):
        for row in camp["rows"]:
            if row["persona_id"] == persona_id and bool(row.get("likely")) == likely:
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


def likely_lines(uplift: Mapping[str, Any] | None, persona_id: str) -> list[str]:
    """What every measured message did for contacted prospects and first-time buyers likely to
    become this persona (a guess about them, labelled as such; never advice)."""
    if not uplift:
        return []
    response = uplift.get("response", "conversion")
    return [
        "Prospects and first-time buyers likely to become this persona (a guess, not members) "
        "- " + result_line(c, r, response)
        for c, r in persona_rows(uplift, persona_id, likely=True)
    ]


def tested_actions(uplift: Mapping[str, Any] | None, persona_id: str) -> list[dict[str, str]]:
    """Playbook entries from randomised tests: recommend what raised, warn about what lowered.

    Only causal rows whose interval excludes zero give an entry; the rest are not advice.
    """
    return [
        {"kind": t["kind"], "action": t["action"], "why": t["why"]}
        for t in tested_messages(uplift, persona_id)
    ]


def tested_messages(uplift: Mapping[str, Any] | None, persona_id: str) -> list[dict[str, Any]]:
    """The tested advice for one persona with its evidence as numbers (``profiles.json``)."""
    if not uplift:
        return []
    response = uplift.get("response", "conversion")
    word = OUTCOME_WORDS[response]
    out = []
    for camp, row in persona_rows(uplift, persona_id):
        if not camp["causal"] or row["verdict"] not in ("raised", "lowered"):
            continue
        cell = row[response]
        why = (
            f"in the randomised test {camp['campaign']} it changed the {word} by "
            f"{pp(cell['uplift'])} against the control group (95% CI {interval(cell)}, "
            f"{row['n_treatment']:,} contacted, {row['n_control']:,} held out); "
            "the interval excludes zero"
        )
        raised = row["verdict"] == "raised"
        out.append(
            {
                "kind": "recommend" if raised else "warn",
                "campaign": camp["campaign"],
                "variant": row["variant"],
                "outcome": response,
                "verdict": row["verdict"],
                "uplift": _r(cell["uplift"]),
                "low": _r(cell["low"]),
                "high": _r(cell["high"]),
                "n_treatment": int(row["n_treatment"]),
                "n_control": int(row["n_control"]),
                "small_cell": bool(row.get("small_cell")),
                "action": (
                    f"Send the tested message '{row['variant']}'"
                    if raised
                    else f"Do not send '{row['variant']}': it lowered the response"
                ),
                "why": why,
            }
        )
    return out


def apply_to_profiles(
    profiles: Mapping[str, Any], uplift: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A copy of ``profiles`` whose personas carry the tested advice of ``uplift``.

    Each persona gets ``tested_messages`` and, first in its ``actions``, one playbook entry per
    tested message (``tested_message`` where the interval lies above zero, ``message_warning``
    where below). Advice from an earlier measurement is replaced, so re-measuring is idempotent;
    ``uplift=None`` removes it. Only member rows count: likely personas never give advice.
    """
    out = copy.deepcopy(dict(profiles))
    for q in out.get("personas", []):
        keep = [a for a in q.get("actions", []) if a.get("key") not in ACTION_KEYS.values()]
        tested = tested_messages(uplift, q["id"])
        q["tested_messages"] = tested
        q["actions"] = [
            {
                "key": ACTION_KEYS[t["kind"]],
                "title": ACTION_TITLES[t["kind"]],
                "what": t["action"],
                "because": t["why"],
            }
            for t in tested
        ] + keep
    return out


def _r(x: float | None) -> float | None:
    return None if x is None else float(f"{x:.6g}")
