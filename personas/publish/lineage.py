"""The report's Data block: row accounting per source and per table, connections hidden."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

URLISH = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")


def section(rows: Sequence[Mapping[str, Any]] | None) -> dict[str, Any] | None:
    """Row accounting per source and per table (a daily-file feed has hundreds of sources)."""
    if rows is None:
        return None
    keys = ("rows_in", "accepted", "quarantined", "duplicates")
    out = []
    per_table: dict[str, dict[str, Any]] = {}
    tot = dict.fromkeys(keys, 0)
    for r in rows:
        counts = {k: int(r.get(k, 0)) for k in keys}
        balanced = (
            counts["rows_in"] == counts["accepted"] + counts["quarantined"] + counts["duplicates"]
        )
        t = per_table.setdefault(
            str(r.get("table", "")),
            {"sources": 0, "balanced": True, "rules": {}, "flags": {}, **dict.fromkeys(keys, 0)},
        )
        t["sources"] += 1
        t["balanced"] &= balanced
        for k in keys:
            tot[k] += counts[k]
            t[k] += counts[k]
        for kind in ("rules", "flags"):
            for name, n in (r.get(kind) or {}).items():
                t[kind][name] = t[kind].get(name, 0) + int(n)
        out.append(
            {
                "source": URLISH.sub("[connection]", str(r.get("source", ""))),
                "table": r.get("table", ""),
                "committed": str(r.get("committed_at", ""))[:10],
                **{k: f"{v:,}" for k, v in counts.items()},
                "balanced": balanced,
                "reasons": _counts_text(r.get("rules")),
                "flags": _counts_text(r.get("flags")),
            }
        )
    tables = [
        {
            "table": name,
            "sources": f"{t['sources']:,}",
            "balanced": t["balanced"],
            **{k: f"{t[k]:,}" for k in keys},
            "reasons": _counts_text(t["rules"]),
            "flags": _counts_text(t["flags"]),
        }
        for name, t in per_table.items()
    ]
    return {
        "rows": out,
        "tables": tables,
        "total": {k: f"{v:,}" for k, v in tot.items()},
        "balanced": all(r["balanced"] for r in out),
    }


def _counts_text(counts: Mapping[str, int] | None) -> list[str]:
    items = sorted((counts or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    return [f"{k.replace('_', ' ')} {int(v):,}" for k, v in items]
