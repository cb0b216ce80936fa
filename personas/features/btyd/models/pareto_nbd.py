"""Pareto/NBD: purchasing and drop-out in continuous time (Schmittlein, Morrison & Colombo 1987).

While alive a customer buys at rate λ ~ Gamma(r, α) and dies at rate μ ~ Gamma(s, β), at any
moment rather than only right after a purchase as in BG/NBD. That is the right story for a
retailer whose customers lapse between visits (a wholesaler that stops ordering), and the
model that identifies drop-out where BG/NBD's a -> 0 cannot.

The likelihood follows Fader & Hardie's 2005 note "A note on deriving the Pareto/NBD model and
related expressions" (eqs. 22-23). Its Gaussian hypergeometric function depends on a customer
through (frequency, recency) and (frequency, T) only, so it is evaluated once per distinct pair
(:func:`~personas.features.btyd.models.base.joint`); its derivatives in the four parameters
have no closed form that scipy offers, so they are forward differences of the log of that
term on the pairs, while everything else in the gradient is analytical.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import digamma, expit, gammaln, hyp2f1

from personas.features.btyd.models.base import (
    ArrayLike,
    Levels,
    PurchaseModel,
    as_levels,
    check_rfm,
    rate_scale,
)

_H = 1e-7  # relative step of the forward differences on the hypergeometric term


def _log_tail(params: np.ndarray, x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """log F(u) with F(u) = ∫_u^∞ (α+y)^-(r+x) (β+y)^-(s+1) dy, as a hypergeometric function.

    ``params`` is (4, k): k parameter vectors at once (the difference steps), one row out each;
    the branch on α >= β keeps the argument of 2F1 in [0, 1), where its series converges.
    """
    r, alpha, s, beta = (np.asarray(p, dtype=float)[..., None] for p in params)
    rsx = r + s + x
    hi = np.maximum(alpha, beta)
    z = np.abs(alpha - beta) / (hi + u)
    second = np.where(alpha >= beta, s + 1.0, r + x)
    return -rsx * np.log(hi + u) + np.log(hyp2f1(rsx, second, rsx + 1.0, z)) - np.log(rsx)


def _tail_and_grad(params: np.ndarray, pairs: Levels, grad: bool) -> tuple[Any, Any]:
    """log F per customer and, with ``grad``, its derivatives (central differences)."""
    if not grad:
        return pairs.map(lambda x, u: _log_tail(params[:, None], x, u)[0]), None
    steps = params[:, None] * (1.0 + _H * np.hstack([np.zeros((4, 1)), np.eye(4)]))

    def value_and_slopes(x: np.ndarray, u: np.ndarray) -> np.ndarray:
        v = _log_tail(steps, x, u)  # on the distinct pairs, before gathering to rows
        return np.vstack([v[:1], (v[1:] - v[:1]) / (_H * params[:, None])])

    out = pairs.map(value_and_slopes)
    return out[0], out[1:]


def pareto_nbd_loglik(
    params: np.ndarray, x: Any, t_x: Any, t_cal: Any, grad: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-customer Pareto/NBD log-likelihood and its gradient in (r, α, s, β).

    L = Γ(r+x) α^r β^s / Γ(r) · [(α+T)^-(r+x) (β+T)^-s + s (F(t_x) - F(T))], with F the
    tail integral of :func:`_log_tail`: alive at T, or died at some y in (t_x, T]. Combined in
    logs so that frequencies in the hundreds neither under- nor overflow.
    """
    r, alpha, s, beta = params
    x, t_x, t_cal = as_levels(x), as_levels(t_x), as_levels(t_cal)
    xv = x.values
    pair_tx, pair_t = t_x.paired(x), t_cal.paired(x)
    log_c = x.map(lambda u: gammaln(r + u) - gammaln(r)) + r * np.log(alpha) + s * np.log(beta)
    log_at, log_bt = t_cal.map(lambda u: np.log(alpha + u)), t_cal.map(lambda u: np.log(beta + u))
    alive = -(r + xv) * log_at - s * log_bt
    f_tx, d_tx = _tail_and_grad(params, pair_tx, grad)
    f_t, d_t = _tail_and_grad(params, pair_t, grad)
    log_ratio = np.minimum(f_t - f_tx, 0.0)  # F(T) <= F(t_x)
    ratio, gap = np.exp(log_ratio), -np.expm1(log_ratio)
    with np.errstate(divide="ignore"):
        dead = np.log(s) + f_tx + np.log(gap)  # -inf when t_x == T
    mix = np.logaddexp(alive, dead)
    ll = log_c + mix
    if not grad:
        return ll, None
    w_dead = np.exp(dead - mix)
    w_alive = 1.0 - w_dead
    safe = np.where(gap > 0, gap, 1.0)
    d_dead = (d_tx - ratio * d_t) / safe  # d log(F(t_x) - F(T))
    d_dead = np.where(gap > 0, d_dead, 0.0)
    d_r = (
        x.map(lambda u: digamma(r + u)) - digamma(r) + np.log(alpha) - w_alive * log_at
    ) + w_dead * d_dead[0]
    d_alpha = r / alpha - w_alive * (r + xv) * t_cal.map(lambda u: 1.0 / (alpha + u))
    d_alpha = d_alpha + w_dead * d_dead[1]
    d_s = np.log(beta) - w_alive * log_bt + w_dead * (1.0 / s + d_dead[2])
    d_beta = s / beta - w_alive * s * t_cal.map(lambda u: 1.0 / (beta + u)) + w_dead * d_dead[3]
    return ll, np.stack([d_r, d_alpha, d_s, d_beta])


class ParetoNBDModel(PurchaseModel):
    """Pareto/NBD model (Schmittlein, Morrison & Colombo 1987), fitted by maximum likelihood.

    Parameters and attributes as :class:`~personas.features.btyd.BetaGeoModel`, with the
    drop-out described by ``s`` and ``beta`` (μ ~ Gamma(s, β): mean lifetime β/(s-1)).
    """

    name = "Pareto/NBD"
    param_names = ("r", "alpha", "s", "beta")
    dropout_params = ("s", "beta")
    loglik = staticmethod(pareto_nbd_loglik)

    def start(self, data: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
        scale = rate_scale(data, weights)
        return np.array([0.0, scale, 0.0, scale])

    def expected_purchases(self, t: ArrayLike | float) -> np.ndarray:
        """Expected repeat purchases in (0, t] (new customer): rβ/(α(s-1))·[1-(β/(β+t))^(s-1)]."""
        r, alpha, s, beta = self._params()
        t = np.asarray(t, dtype=float)
        return r / alpha * _lifetime_integral(s, beta, t)

    def probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """P(alive at T | history): the share of the likelihood in its "alive" branch."""
        params = np.array(self._params())
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        r, alpha, s, beta = params
        alive = -(r + x) * np.log(alpha + t_cal) - s * np.log(beta + t_cal)
        f_tx = _log_tail(params[:, None], x, t_x)[0]
        f_t = _log_tail(params[:, None], x, t_cal)[0]
        with np.errstate(divide="ignore"):
            dead = np.log(s) + f_tx + np.log(-np.expm1(np.minimum(f_t - f_tx, 0.0)))
        return expit(alive - dead)

    def purchases_if_alive(
        self, t: ArrayLike | float, frequency: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """Given alive at T, λ ~ Gamma(r+x, α+T) and μ ~ Gamma(s, β+T) (F&H 2005 note, eq. 15)."""
        r, alpha, s, beta = self._params()
        return (r + frequency) / (alpha + T) * _lifetime_integral(s, beta + T, t)


def _lifetime_integral(s: float, beta: Any, t: Any) -> np.ndarray:
    """E[min(lifetime, t)] for μ ~ Gamma(s, β): β/(s-1) [1 - (β/(β+t))^(s-1)], log at s = 1."""
    beta, t = np.broadcast_arrays(np.asarray(beta, dtype=float), np.asarray(t, dtype=float))
    if abs(s - 1.0) < 1e-8:
        return beta * np.log1p(t / beta)
    return beta / (s - 1.0) * -np.expm1((s - 1.0) * -np.log1p(t / beta))


def simulate_pareto_nbd(
    n: int,
    r: float,
    alpha: float,
    s: float,
    beta: float,
    T: float | ArrayLike,
    seed: int | None = None,
) -> pd.DataFrame:
    """Draw (frequency, recency, T) for ``n`` customers from the Pareto/NBD process.

    A customer lives an Exponential(μ) time τ; he buys N ~ Poisson(λ min(τ, T)) times, the last
    at min(τ, T) times the largest of N uniforms (Beta(N, 1)). ``alive`` is τ > T.
    """
    if n < 1 or min(r, alpha, s, beta) <= 0:
        raise ValueError(f"need n >= 1 and positive r, alpha, s, beta; got n={n}.")
    rng = np.random.default_rng(seed)
    t_cal = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    lifetime = rng.exponential(1.0 / mu)
    life = np.minimum(lifetime, t_cal)
    x = rng.poisson(lam * life)
    t_x = np.where(x > 0, life * rng.beta(np.maximum(x, 1), 1.0), 0.0)
    return pd.DataFrame(
        {
            "frequency": x,
            "recency": t_x,
            "T": t_cal,
            "lam": lam,
            "mu": mu,
            "alive": lifetime > t_cal,
        }
    )
