"""Persona identities kept across runs: matching, first ids, the migration table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from personas.profile.identity import first_ids, match, migration_matrix


def test_identity_keeps_ids_through_relabelling_and_reports_changes() -> None:
    rng = np.random.default_rng(0)
    idx = pd.Index([f"c{i}" for i in range(900)])
    prev = pd.Series(np.repeat(["P1", "P2", "P3"], 300), index=idx)
    # same customers, clusters renumbered: 0 <- P3, 1 <- P1, 2 <- P2
    cur = pd.Series(np.repeat([1, 2, 0], 300), index=idx)
    ident = match(cur, prev, {"P1": "A", "P2": "B", "P3": "C"})
    assert ident.ids == {1: "P1", 2: "P2", 0: "P3"} and ident.names[0] == "C"
    assert not ident.new and not ident.vanished
    # P2 splits into two new clusters, P3 vanishes into P1
    cur2 = pd.Series(
        np.concatenate(
            [np.zeros(300), rng.permutation(np.repeat([1, 2], 150)), np.zeros(300)]
        ).astype(int),
        index=idx,
    )
    ident2 = match(cur2, prev, {})
    assert ident2.ids[0] == "P1"
    assert {"from": "P2", "into": sorted(ident2.split[0]["into"])} == {
        "from": "P2",
        "into": sorted([ident2.ids[1], ident2.ids[2]]),
    }
    assert ident2.merged and set(ident2.merged[0]["from"]) == {"P1", "P3"}
    assert "P3" in ident2.vanished and len(ident2.new) == 1
    m = migration_matrix(cur2.map(ident2.ids), prev)
    assert m["customers"].sum() == 900


def test_first_ids_follow_size_order() -> None:
    assert first_ids(np.array([0, 0, 1, -1])).ids == {0: "P1", 1: "P2"}
