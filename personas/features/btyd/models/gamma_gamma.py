"""Gamma-Gamma: the spend per purchase, shrunk towards the population mean.

Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves"; Fader & Hardie 2013, "The
Gamma-Gamma model of monetary value". With BG/NBD it gives a customer's lifetime value.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.special import digamma, gammaln

from personas.features.btyd.models.base import (
    ArrayLike,
    BTYDModel,
    as_float,
    as_levels,
    check_weights,
    compress,
)


def gamma_gamma_loglik(
    params: np.ndarray, x: Any, m: Any, grad: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Log-density of a customer's mean spend m over x purchases (Fader & Hardie 2013, eq. 4).

    Spend per purchase is Gamma(p, ν) and ν ~ Gamma(q, γ) across customers; ``v`` is γ. The
    columns may be arrays or :class:`Levels` (their logarithms are then taken once per fit).
    """
    p, q, v = params
    x, m = as_levels(x), as_levels(m)
    xv, mv = x.values, m.values
    log_m, log_x = m.log, x.log
    px = p * xv
    log_vmx = np.log(v + mv * xv)
    ll = (
        x.map(lambda u: gammaln(p * u + q) - gammaln(p * u))
        - gammaln(q)
        + q * np.log(v)
        + (px - 1.0) * log_m
        + px * log_x
        - (px + q) * log_vmx
    )
    if not grad:
        return ll, None
    psi_pxq = x.map(lambda u: digamma(p * u + q))
    d_p = xv * (psi_pxq - x.map(lambda u: digamma(p * u)) + log_m + log_x - log_vmx)
    d_q = psi_pxq - digamma(q) + np.log(v) - log_vmx
    d_v = q / v - (px + q) / (v + mv * xv)
    return ll, np.stack([d_p, d_q, d_v])


class GammaGammaModel(BTYDModel):
    """Gamma-Gamma model of the average value of a customer's purchases.

    Each customer's purchases are Gamma(p, ν) with a customer-specific ν ~ Gamma(q, v), so a
    customer's expected spend is shrunk from his observed mean towards the population mean
    p·v/(q-1), more so the fewer purchases he has made. It assumes spend is independent of
    purchase frequency; check that correlation on your data before trusting CLV figures.

    Parameters
    ----------
    penalizer : float, default 0.0
        L2 penalty on (p, q, v).

    Attributes
    ----------
    params_ : dict
        Fitted ``p``, ``q``, ``v``.
    log_likelihood_ : float
        Total log-likelihood of the customers used.
    n_customers_ : int
        Customers used: frequency > 0 and monetary_value > 0.
    n_excluded_ : int
        Customers with frequency > 0 but non-positive mean spend, which the gamma density
        cannot describe and so are left out.
    """

    param_names = ("p", "q", "v")
    loglik = staticmethod(gamma_gamma_loglik)

    def fit(
        self, frequency: ArrayLike, monetary_value: ArrayLike, weights: ArrayLike | None = None
    ) -> GammaGammaModel:
        """Estimate (p, q, v) from customers with at least one repeat purchase.

        Customers without repeat purchases carry no information on repeat spend (their only
        purchase is the acquisition), so they are left out as in Fader & Hardie's note.
        """
        self._check_penalizer()
        x = as_float(frequency, "frequency")
        m = as_float(monetary_value, "monetary_value")
        if len(x) != len(m):
            raise ValueError(f"frequency and monetary_value lengths differ: {len(x)} vs {len(m)}.")
        w = check_weights(weights, len(x))
        repeat = (x > 0) & (w > 0)
        keep = repeat & (m > 0)
        if keep.sum() < 2:
            raise ValueError(
                f"Gamma-Gamma needs customers with frequency > 0 and monetary_value > 0; found "
                f"{int(keep.sum())}. Use a longer calibration period."
            )
        data, w = compress([x[keep], m[keep]], w[keep])
        # Start with v on the scale of the observed spend: v = mean spend · (q-1)/p at p=q=2.
        x0 = np.array([np.log(2.0), np.log(2.0), np.log(float(np.median(m[keep])) / 2.0)])
        self._maximize(data, w, x0)
        self.n_excluded_ = int((repeat & ~keep).sum())
        q = self.params_["q"]
        if q <= 1.0:
            warnings.warn(
                f"Gamma-Gamma q={q:.3f} <= 1: the population mean spend p·v/(q-1) is "
                "infinite; expected values for new customers are unreliable.",
                RuntimeWarning,
                stacklevel=2,
            )
        return self

    def population_mean_value(self) -> float:
        """Expected spend per purchase of a customer with no repeat history: p·v/(q-1)."""
        p, q, v = self._params()
        return p * v / (q - 1.0) if q > 1.0 else float("inf")

    def conditional_expected_average_value(
        self, frequency: ArrayLike, monetary_value: ArrayLike
    ) -> np.ndarray:
        """Posterior mean spend per purchase: a credibility-weighted blend (F&H 2013, eq. 5).

        With frequency 0 the weight on the customer's own mean is 0, so one-purchase customers
        get the population mean, which is the fallback ``score_customers`` relies on.
        """
        p, q, v = self._params()
        x = as_float(frequency, "frequency")
        m = as_float(monetary_value, "monetary_value")
        if (x < 0).any():
            raise ValueError("frequency is negative; it counts repeat purchases (>= 0).")
        return p * (v + x * np.where(x > 0, m, 0.0)) / (p * x + q - 1.0)


def simulate_gamma_gamma(
    frequency: ArrayLike, p: float, q: float, v: float, seed: int | None = None
) -> np.ndarray:
    """Mean spend of each customer's repeat purchases under the Gamma-Gamma model.

    ν ~ Gamma(q, rate v) per customer; the mean of x Gamma(p, rate ν) draws is
    Gamma(p·x, rate ν·x). Customers with frequency 0 get 0, as in ``rfm_summary``.
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(frequency, dtype=float)
    nu = rng.gamma(q, 1.0 / v, x.shape)
    repeat = x > 0
    m = np.zeros(x.shape)
    m[repeat] = rng.gamma(p * x[repeat], 1.0 / (nu[repeat] * x[repeat]))
    return m
