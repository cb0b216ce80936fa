"""Vectorised drawing helpers shared by every draw: items per owner and categorical picks.

Every draw works on flat arrays of items (orders, lines, sessions) with an owner index, never on
Python loops over customers, so a million customers fit in a minute or two.
"""

from __future__ import annotations

import numpy as np


def segments(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Owner index and rank within the owner for ``counts[i]`` items per owner."""
    owner = np.repeat(np.arange(counts.size), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(owner.size) - starts[owner]


def pick(rng: np.random.Generator, cum: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One categorical draw per item from the cumulative probabilities of its owner row.

    Loops over the (few) categories rather than gathering an items x categories matrix, so
    memory stays at one column per step.
    """
    u = rng.random(rows.size)
    out = np.zeros(rows.size, dtype=np.int64)
    for j in range(cum.shape[1] - 1):
        out += u > cum[rows, j]
    return out
