"""NBD: repeat purchasing without drop-out (Ehrenberg 1959), the limit BG/NBD and Pareto/NBD reach.

When the data show no sign of customers leaving (a wholesaler's accounts over a few months),
BG/NBD's a -> 0, b -> inf and Pareto/NBD's s -> 0 run to the edge of the parameter space while
their likelihood tends to this model's: fitting the NBD itself gives the same forecasts from two
parameters that the data do pin down, instead of a degenerate fit at the optimizer's bound.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import digamma, gammaln

from personas.features.btyd.models import base
from personas.features.btyd.models.base import ArrayLike, PurchaseModel, check_rfm


def nbd_loglik(
    params: np.ndarray, x: Any, t_x: Any, t_cal: Any, grad: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-customer NBD log-likelihood of (x, T) and its gradient in (r, α).

    On the same footing as the BG/NBD likelihood (its "alive" branch with a -> 0), so the two
    log-likelihoods can be compared; recency carries no information here.
    """
    r, alpha = params
    x, t_cal = base.as_levels(x), base.as_levels(t_cal)
    xv = x.values
    log_at = t_cal.map(lambda u: np.log(alpha + u))
    ll = x.map(lambda u: gammaln(r + u) - gammaln(r)) + r * np.log(alpha) - (r + xv) * log_at
    if not grad:
        return ll, None
    d_r = x.map(lambda u: digamma(r + u)) - digamma(r) + np.log(alpha) - log_at
    d_alpha = r / alpha - (r + xv) * t_cal.map(lambda u: 1.0 / (alpha + u))
    return ll, np.stack([d_r, d_alpha])


class NBDModel(PurchaseModel):
    """NBD model: every customer buys at his own Poisson rate λ ~ Gamma(r, α), forever.

    P(alive) is 1 for everyone, so its churn risk is 0: chosen, it says "no drop-out is
    visible in this history", which the report states instead of showing a churn figure.
    """

    name = "NBD"
    param_names = ("r", "alpha")
    loglik = staticmethod(nbd_loglik)

    def start(self, data: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
        return np.array([0.0, base.rate_scale(data, weights)])

    def expected_purchases(self, t: ArrayLike | float) -> np.ndarray:
        r, alpha = self._params()
        return r / alpha * np.asarray(t, dtype=float)

    def probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        self._params()
        return np.ones(len(check_rfm(frequency, recency, T)[0]))

    def purchases_if_alive(
        self, t: ArrayLike | float, frequency: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """(r + x) / (α + T) · t: the posterior mean rate times the horizon."""
        r, alpha = self._params()
        return (r + frequency) / (alpha + T) * np.asarray(t, dtype=float)
