"""Stable persona identities across refreshes.

Clustering numbers its clusters arbitrarily, but a marketing team runs campaigns against
"P3 Loyal high-value shoppers" for months. Each refresh therefore matches its personas to the
previous publication's by the customers they share (Jaccard overlap, optimal one-to-one
assignment with the Hungarian algorithm). A matched persona keeps its id and name; the rest
are reported as new, vanished, split or merged, and a customer-level migration matrix shows
who moved where.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

MIN_JACCARD = 0.3
SPLIT_SHARE = 0.25
ABSENT = "(absent)"


@dataclass
class Identity:
    """The outcome of matching this run's personas to the previous run's."""

    ids: dict[int, str]
    names: dict[int, str] = field(default_factory=dict)
    matched: list[dict] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    split: list[dict] = field(default_factory=list)
    merged: list[dict] = field(default_factory=list)
    previous_run: str | None = None

    def to_json(self) -> dict:
        return {
            "previous_run": self.previous_run,
            "matched": self.matched,
            "new": self.new,
            "vanished": self.vanished,
            "split": self.split,
            "merged": self.merged,
        }


def first_ids(labels: np.ndarray) -> Identity:
    """Ids for a first run: P1, P2, ... by decreasing size (labels are already size-ordered)."""
    ks = sorted(int(k) for k in np.unique(labels) if k >= 0)
    return Identity(ids={k: f"P{k + 1}" for k in ks}, new=[f"P{k + 1}" for k in ks])


def match(
    current: pd.Series,
    previous: pd.Series,
    previous_names: dict[str, str],
    previous_run: str | None = None,
    min_jaccard: float = MIN_JACCARD,
) -> Identity:
    """Match current persona indices to previous persona ids.

    ``current``: persona index (>= 0; negative = not profiled) by customer id.
    ``previous``: persona id (e.g. "P3"; groups like "NEW" are ignored) by customer id.
    """
    cur = current[current >= 0]
    prev = previous[previous.astype(str).str.match(r"^P\d+$")]
    common = cur.index.intersection(prev.index)
    cur_ks = sorted(int(k) for k in cur.unique())
    prev_ids = sorted(prev.unique(), key=_id_num)
    if not prev_ids or len(common) == 0:
        ident = first_ids(cur.to_numpy())
        ident.previous_run = previous_run
        ident.vanished = list(prev_ids)
        return ident
    c = cur.loc[common]
    p = prev.loc[common]
    ct = pd.crosstab(p, c).reindex(index=prev_ids, columns=cur_ks, fill_value=0)
    inter = ct.to_numpy(dtype=float)
    size_p = inter.sum(axis=1, keepdims=True)
    size_c = inter.sum(axis=0, keepdims=True)
    jac = inter / np.maximum(size_p + size_c - inter, 1)
    rows, cols = linear_sum_assignment(-jac)
    ids: dict[int, str] = {}
    names: dict[int, str] = {}
    matched = []
    for r, k in zip(rows, cols, strict=True):
        if jac[r, k] >= min_jaccard:
            pid = prev_ids[r]
            ids[cur_ks[k]] = pid
            if pid in previous_names:
                names[cur_ks[k]] = previous_names[pid]
            matched.append({"id": pid, "jaccard": round(float(jac[r, k]), 4)})
    next_num = max(_id_num(x) for x in prev_ids) + 1
    new = []
    for k in cur_ks:
        if k not in ids:
            ids[k] = f"P{next_num}"
            new.append(ids[k])
            next_num += 1
    vanished = [pid for pid in prev_ids if pid not in ids.values()]
    split = []
    for i, pid in enumerate(prev_ids):
        shares = inter[i] / max(inter[i].sum(), 1)
        to = [ids[cur_ks[j]] for j in np.flatnonzero(shares >= SPLIT_SHARE)]
        if len(to) >= 2:
            split.append({"from": pid, "into": to})
    merged = []
    for j, k in enumerate(cur_ks):
        shares = inter[:, j] / max(inter[:, j].sum(), 1)
        frm = [prev_ids[i] for i in np.flatnonzero(shares >= SPLIT_SHARE)]
        if len(frm) >= 2:
            merged.append({"into": ids[k], "from": frm})
    return Identity(ids, names, matched, new, vanished, split, merged, previous_run)


def migration_matrix(current: pd.Series, previous: pd.Series) -> pd.DataFrame:
    """Customers by (previous group, current group), including arrivals and departures."""
    idx = current.index.union(previous.index)
    c = current.reindex(idx).fillna(ABSENT).astype(str)
    p = previous.reindex(idx).fillna(ABSENT).astype(str)
    m = pd.crosstab(p.rename("previous"), c.rename("current"))
    return (
        m.stack()
        .rename("customers")
        .reset_index()
        .query("customers > 0")
        .sort_values(["previous", "current"])
        .reset_index(drop=True)
    )


def _id_num(pid: str) -> int:
    try:
        return int(str(pid).lstrip("P"))
    except ValueError:
        return 0
