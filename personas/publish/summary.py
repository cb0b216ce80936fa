"""Short summaries of a publication: a table and Markdown for Prefect artifacts and chat tools."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from personas.publish.cards import md_escape


def summary_table(profiles: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per persona and published group, for a Prefect table artifact."""
    rows = []
    for p in sorted(profiles["personas"], key=lambda q: (-q["size"], q["id"])):
        rows.append(
            {
                "id": p["id"],
                "persona": p["name"],
                "customers": p["size"],
                "share": f"{p['share']:.1%}",
                "top_trait": p["traits"][0]["text"] if p["traits"] else "",
                "first_action": p["actions"][0]["title"] if p["actions"] else "",
            }
        )
    for g in profiles["groups"]:
        if g.get("published"):
            rows.append(
                {
                    "id": g["id"],
                    "persona": g["name"],
                    "customers": g["size"],
                    "share": f"{g['share']:.1%}",
                    "top_trait": g.get("reason", ""),
                    "first_action": "",
                }
            )
    return rows


def summary_markdown(profiles: Mapping[str, Any]) -> str:
    """A short Markdown summary of the personas, for a Prefect markdown artifact.

    Every data-derived value is escaped with :func:`personas.publish.cards.md_escape`.
    """
    e = md_escape
    pop = profiles["population"]
    m = profiles["model"]
    n = pop["customers"]
    lines = [
        f"## Buyer personas as of {e(profiles.get('as_of'))}",
        "",
        f"{n:,} customers, {len(profiles['personas'])} personas covering "
        f"{pop['profiled'] / max(n, 1):.0%} of them. Model: {e(m.get('algorithm'))} with "
        f"{m.get('k')} personas, bootstrap stability {_fmt(m.get('stability'), '{:.2f}')}, "
        f"rule fidelity {_fmt(profiles['rules'].get('fidelity'), '{:.0%}')}.",
        "",
        "| Persona | Customers | Share | What sets them apart | First action |",
        "|---|---:|---:|---|---|",
    ]
    for r in summary_table(profiles):
        lines.append(
            f"| {e(r['id'])} {e(r['persona'])} | {r['customers']:,} | {r['share']} | "
            f"{e(r['top_trait'])} | {e(r['first_action'])} |"
        )
    small = [g for g in profiles["groups"] if not g.get("published")]
    if small:
        lines += [
            "",
            "Not published (below the minimum size of "
            f"{profiles['min_persona_size']:,}): " + ", ".join(e(g["name"]) for g in small) + ".",
        ]
    return "\n".join(lines) + "\n"


def _fmt(x: Any, spec: str) -> str:
    return "n/a" if x is None else spec.format(x)
