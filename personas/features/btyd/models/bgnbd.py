"""BG/NBD: repeat purchasing and silent drop-out (Fader, Hardie & Lee 2005).

"Counting your customers the easy way": from three numbers per customer, ``frequency`` (repeat
purchases), ``recency`` (time of the last purchase since the first) and ``T`` (time since the
first purchase), it tells how likely a customer is still active and how much he will buy.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from personas.features.btyd.models.base import (
    ArrayLike,
    PurchaseModel,
    as_levels,
    check_rfm,
    rate_scale,
)


def bgnbd_loglik(
    params: np.ndarray, x: Any, t_x: Any, t_cal: Any, grad: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-customer BG/NBD log-likelihood (FHL 2005, eq. 6) and its gradient in (r, α, a, b).

    Written as A1 + A2 + log(exp(A3) + δ(x>0) exp(A4)) and combined with logaddexp, which stays
    finite for frequencies in the thousands where the products in eq. 6 under/overflow. The
    columns may be arrays or :class:`Levels` (prepared once per fit).
    """
    return beta_geo_loglik(params, x, t_x, t_cal, grad, shift=0)


def beta_geo_loglik(
    params: np.ndarray, x: Any, t_x: Any, t_cal: Any, grad: bool = False, shift: int = 0
) -> tuple[np.ndarray, np.ndarray | None]:
    """The BG/NBD family's likelihood: ``shift`` 0 is BG/NBD, 1 is MBG/NBD.

    MBG/NBD (Batislam et al. 2007) lets a customer drop out right after the first purchase
    too, which turns b + x - 1 into b + x, B(a, b+x) into B(a, b+x+1), and applies the
    "died after the last purchase" branch to customers without repeat purchases as well.
    """
    r, alpha, a, b = params
    x, t_x, t_cal = as_levels(x), as_levels(t_x), as_levels(t_cal)
    xv = x.values
    dead_branch = (xv > 0) | (shift > 0)
    log_at = t_cal.map(lambda u: np.log(alpha + u))
    log_atx = t_x.map(lambda u: np.log(alpha + u))
    a12 = x.map(
        lambda u: (
            gammaln(r + u)
            - gammaln(r)
            + r * np.log(alpha)
            + betaln(a, b + u + shift)
            - betaln(a, b)
        )
    )
    a3 = -(r + xv) * log_at
    log_bx1 = x.map(lambda u: np.log(np.where(u + shift > 0, b + u - 1.0 + shift, 1.0)))
    a4 = np.where(dead_branch, np.log(a) - log_bx1 - (r + xv) * log_atx, -np.inf)
    mix = np.logaddexp(a3, a4)
    ll = a12 + mix
    if not grad:
        return ll, None
    w4 = np.exp(a4 - mix)  # share of the "died after the last purchase" branch
    w3 = 1.0 - w4
    d_r = x.map(lambda u: digamma(r + u)) - digamma(r) + np.log(alpha) - w3 * log_at - w4 * log_atx
    d_alpha = r / alpha - (r + xv) * (
        w3 * t_cal.map(lambda u: 1.0 / (alpha + u)) + w4 * t_x.map(lambda u: 1.0 / (alpha + u))
    )
    psi_abx = x.map(lambda u: digamma(a + b + u + shift))
    d_a = digamma(a + b) - psi_abx + w4 / a
    d_b = (
        x.map(lambda u: digamma(b + u + shift))
        - psi_abx
        - digamma(b)
        + digamma(a + b)
        - w4 * np.exp(-log_bx1)
    )
    return ll, np.stack([d_r, d_alpha, d_a, d_b])


def _alive_purchases(
    r: float, alpha: float, a: float, b: float, t: Any, x: Any, t_cal: Any
) -> np.ndarray:
    """Expected purchases in (T, T+t] for a customer known to be alive at T (numerator of eq. 10).

    Euler's transformation turns ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x-1; z) into
    (1-z)^(a-1) · 2F1(a+b-1-r, a-1; a+b+x-1; z): the same value, but the hypergeometric series
    now tends to 1 as x grows instead of overflowing while its prefactor underflows.
    """
    if abs(a - 1.0) < 1e-7:  # removable singularity at a = 1; evaluate next to it
        a = 1.0 + 1e-7
    t, x, t_cal = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (t, x, t_cal)))
    z = t / (alpha + t_cal + t)
    c = a + b + x - 1.0
    with np.errstate(invalid="ignore", over="ignore"):
        tail = (1.0 - z) ** (a - 1.0) * hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
    bad = ~np.isfinite(tail)
    if bad.any():
        # Large a and b (every customer with the same drop-out propensity): the transformed
        # series overflows while its prefactor underflows, and eq. 10 as printed is then the
        # well-behaved one (its third parameter c is large, so the series stays near 1).
        xb, zb = x[bad], z[bad]
        tail[bad] = (1.0 - zb) ** (r + xb) * hyp2f1(r + xb, b + xb, c[bad], zb)
    return c / (a - 1.0) * (1.0 - tail)


class BetaGeoModel(PurchaseModel):
    """BG/NBD model of repeat purchasing and silent drop-out (Fader, Hardie & Lee 2005).

    While alive a customer buys as a Poisson process with rate λ ~ Gamma(r, α); after each repeat
    purchase he drops out with probability p ~ Beta(a, b). The population parameters are
    estimated by maximum likelihood.

    Parameters
    ----------
    penalizer : float, default 0.0
        L2 penalty on the parameters; a small value (0.001-0.1) keeps estimates finite on
        small or degenerate cohorts.
    compress : bool, default True
        Merge customers with identical (frequency, recency, T) into weighted rows before
        optimizing. The estimates are the same either way; ``False`` exists so the benchmark
        can measure what compression buys.

    Attributes
    ----------
    params_ : dict
        Fitted ``r``, ``alpha``, ``a``, ``b``.
    log_likelihood_ : float
        Total (unpenalized) log-likelihood at ``params_``.
    log_std_errors_ : dict
        Standard errors of the log-parameters (inf where the likelihood is flat).
    n_customers_ : int
        Customers fitted (sum of weights).
    n_unique_ : int
        Distinct (frequency, recency, T) rows the optimizer actually saw.
    n_iter_ : int
        Optimizer iterations.

    Examples
    --------
    >>> data = simulate_bgnbd(2000, r=0.25, alpha=4.0, a=0.8, b=2.5, T=39.0, seed=1)
    >>> model = BetaGeoModel().fit(data["frequency"], data["recency"], data["T"])
    >>> sorted(model.params_)
    ['a', 'alpha', 'b', 'r']
    """

    name = "BG/NBD"
    param_names = ("r", "alpha", "a", "b")
    dropout_params = ("a", "b")
    loglik = staticmethod(bgnbd_loglik)
    shift: ClassVar[int] = 0  # 1 for MBG/NBD: drop-out possible at the first purchase too

    def start(self, data: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
        return np.array([0.0, rate_scale(data, weights), 0.0, 0.0])

    def expected_purchases(self, t: ArrayLike | float) -> np.ndarray:
        """Expected repeat purchases in (0, t] for a newly acquired customer (FHL eq. 9)."""
        r, alpha, a, b = self._params()
        t = np.asarray(t, dtype=float)
        return _alive_purchases(r, alpha, a, b + self.shift, t, np.zeros_like(t), np.zeros_like(t))

    def probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """P(alive at T | history) (Fader, Hardie & Lee 2008 note); 1 when frequency is 0.

        Computed as a logistic of the log-odds so it stays in [0, 1] without overflow for heavy
        buyers who have been silent for a long time.
        """
        r, alpha, a, b = self._params()
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        branch = (x > 0) | (self.shift > 0)
        log_odds_dead = np.where(
            branch,
            np.log(a)
            - np.log(np.where(branch, b + x - 1.0 + self.shift, 1.0))
            + (r + x) * (np.log(alpha + t_cal) - np.log(alpha + t_x)),
            -np.inf,
        )
        return expit(-log_odds_dead)

    def purchases_if_alive(
        self, t: ArrayLike | float, frequency: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """The numerator of FHL eq. 10 (with b + 1 for MBG/NBD)."""
        r, alpha, a, b = self._params()
        return _alive_purchases(r, alpha, a, b + self.shift, t, frequency, T)


def simulate_bgnbd(
    n: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: float | ArrayLike,
    seed: int | None = None,
) -> pd.DataFrame:
    """Draw (frequency, recency, T) for ``n`` customers from the BG/NBD process.

    Vectorized without simulating purchase by purchase: a customer drops out after his J-th
    repeat purchase with J ~ Geometric(p), so frequency = min(J, N) with N ~ Poisson(λT) the
    purchases an immortal customer would make; given N, the k-th arrival time of a Poisson
    process on (0, T] is T·Beta(k, N-k+1) (uniform order statistics).

    Returns
    -------
    DataFrame
        Columns ``frequency``, ``recency``, ``T`` plus the latent ``lam``, ``p``.
    """
    if n < 1 or min(r, alpha, a, b) <= 0:
        raise ValueError(
            f"need n >= 1 and positive r, alpha, a, b; got n={n}, "
            f"r={r}, alpha={alpha}, a={a}, b={b}."
        )
    rng = np.random.default_rng(seed)
    t_cal = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    n_immortal = rng.poisson(lam * t_cal)
    n_before_death = rng.geometric(np.clip(p, 1e-300, 1.0))
    x = np.minimum(n_before_death, n_immortal)
    repeat = x > 0
    t_x = np.zeros(n)
    t_x[repeat] = t_cal[repeat] * rng.beta(x[repeat], n_immortal[repeat] - x[repeat] + 1)
    return pd.DataFrame({"frequency": x, "recency": t_x, "T": t_cal, "lam": lam, "p": p})
