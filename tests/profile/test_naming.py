"""Persona names: unique within a run and the same for the same profile."""

from __future__ import annotations

from personas.profile.naming import PersonaStats, make_names


def test_names_are_unique_and_deterministic() -> None:
    stats = [PersonaStats(i, 0.2, {}, {}, {}, {"recency_days": 1.0}) for i in range(4)]
    a, b = make_names(stats), make_names(stats)
    assert a == b and len(set(a.values())) == 4
