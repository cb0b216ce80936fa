"""Drift between the customers a persona model was fitted on and today's (see docs/drift.md).

Four measures, each with a threshold in the ``refresh:`` config:

* **PSI per model feature** between the model's reference sample (saved at fit) and today's
  customers; bins are the reference's deciles, so each bin starts with ~10% of the mass.
* **Low-confidence share**: customers assigned with a confidence below the 5th percentile seen
  at fit (5% by construction at fit time; a rise means customers sit between personas).
* **Persona share shift**: the largest absolute change of a persona's share of customers
  against the last publication.
* **New-customer share**: customers the model has never seen (absent from its fit).

Pure functions over arrays and frames; the run folder (reference sample, ``drift.json``) is
:mod:`personas.runs`'s.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from personas.ids import among

# features that grow with the calendar for every customer alike: the reference is aged by the
# model's age before comparing, or a steady customer base would "drift" a week per week
AGING = ("tenure_days",)
REFERENCE_ROWS = 5000
PSI_BINS = 10
EPS = 1e-4


@dataclass
class Thresholds:
    """Limits above which a measure calls for a refit (the ``refresh:`` config)."""

    psi: float = 0.25
    low_confidence: float = 0.15
    share_shift: float = 0.10
    new_customers: float = 0.5


Mode = Literal["auto", "assign", "refit"]


@dataclass
class Policy:
    """When a refresh refits (the ``refresh:`` config section; used by personas.refresh)."""

    mode: Mode = "auto"
    refit_every: int = 28  # days of as-of time
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass
class Drift:
    """Drift figures of one run against its model (and the last publication)."""

    psi: dict[str, float] = field(default_factory=dict)
    low_confidence_share: float | None = None
    share_shift: dict[str, float] = field(default_factory=dict)
    new_customer_share: float | None = None
    added_features: list[str] = field(default_factory=list)
    missing_features: list[str] = field(default_factory=list)

    @property
    def max_psi(self) -> float | None:
        return max(self.psi.values()) if self.psi else None

    @property
    def max_share_shift(self) -> float | None:
        return max((abs(v) for v in self.share_shift.values()), default=None)

    def over(self, t: Thresholds) -> list[str]:
        """Human reasons for each measure over its threshold (empty: no drift)."""
        out = []
        for f, v in sorted(self.psi.items(), key=lambda kv: -kv[1]):
            if v > t.psi:
                out.append(f"PSI of {f} {v:.2f} > {t.psi:g}")
        if self.low_confidence_share is not None and self.low_confidence_share > t.low_confidence:
            out.append(
                f"low-confidence share {self.low_confidence_share:.2f} > {t.low_confidence:g}"
            )
        for pid, v in sorted(self.share_shift.items(), key=lambda kv: -abs(kv[1])):
            if abs(v) > t.share_shift:
                out.append(f"share of {pid} moved {v:+.2f} (limit {t.share_shift:g})")
        if self.new_customer_share is not None and self.new_customer_share > t.new_customers:
            out.append(f"new-customer share {self.new_customer_share:.2f} > {t.new_customers:g}")
        return out

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(max_psi=self.max_psi, max_share_shift=self.max_share_shift)
        return d


def reference_sample(X: pd.DataFrame, seed: int = 0, n: int = REFERENCE_ROWS) -> pd.DataFrame:
    """A seeded sample of the features table kept with the model (all columns, index kept)."""
    if len(X) <= n:
        return X.copy()
    rng = np.random.default_rng(seed)
    return X.iloc[np.sort(rng.choice(len(X), n, replace=False))]


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index of ``current`` against ``reference``.

    Bins are the reference's quantiles (ties merged, so a 0/1 feature gets two bins); missing
    values are a bin of their own. ``sum((c - r) * ln(c / r))`` with shares floored at 1e-4.
    """
    r = np.asarray(reference, dtype=float)
    c = np.asarray(current, dtype=float)
    rf, cf = r[np.isfinite(r)], c[np.isfinite(c)]
    if len(rf) == 0:
        return 0.0
    edges = np.unique(np.quantile(rf, np.linspace(0, 1, bins + 1)[1:-1]))
    rc = np.bincount(np.searchsorted(edges, rf, side="right"), minlength=len(edges) + 1)
    cc = np.bincount(np.searchsorted(edges, cf, side="right"), minlength=len(edges) + 1)
    rc = np.append(rc, len(r) - len(rf))
    cc = np.append(cc, len(c) - len(cf))
    rs = np.maximum(rc / max(len(r), 1), EPS)
    cs = np.maximum(cc / max(len(c), 1), EPS)
    return float(np.sum((cs - rs) * np.log(cs / rs)))


def measure(
    X: pd.DataFrame,
    reference: pd.DataFrame,
    features: list[str],
    confidence: np.ndarray,
    confidence_p05: float | None,
    shares: dict[str, float],
    previous_shares: dict[str, float] | None,
    model_customers: pd.Index | None,
    age_days: int = 0,
) -> Drift:
    """All four measures for today's features ``X`` scored by the model.

    ``features`` are the model's; ``confidence`` today's assignment confidence (NaN for the
    not profiled); ``shares`` today's persona shares by id, ``previous_shares`` the last
    publication's; ``model_customers`` the customer ids the model was fitted on; ``age_days``
    the as-of days since the fit, added to the reference's :data:`AGING` features.
    """
    d = Drift()
    for f in features:
        if f in X.columns and f in reference.columns:
            ref = pd.to_numeric(reference[f], errors="coerce").to_numpy(dtype=float)
            if f in AGING:
                ref = ref + age_days
            cur = pd.to_numeric(X[f], errors="coerce").to_numpy(dtype=float)
            d.psi[f] = round(psi(ref, cur), 4)
    conf = np.asarray(confidence, dtype=float)
    conf = conf[np.isfinite(conf)]
    if confidence_p05 is not None and len(conf):
        d.low_confidence_share = round(float((conf < confidence_p05).mean()), 4)
    if previous_shares is not None:
        ids = sorted(set(shares) | set(previous_shares))
        d.share_shift = {i: round(shares.get(i, 0.0) - previous_shares.get(i, 0.0), 4) for i in ids}
    if model_customers is not None and len(X):
        seen = among(X.index, model_customers)
        d.new_customer_share = round(float(1 - seen.mean()), 4)
    d.added_features = sorted(set(X.columns) - set(reference.columns))
    d.missing_features = sorted(set(reference.columns) - set(X.columns))
    return d
