"""Fit diagnostics: is a BTYD fit the data's answer, or the optimizer's or the model's?

Each check returns ``{"check", "severity", "message"}``: severity "degenerate" means the
figures must not be used (a parameter at the optimizer's bound, a flat likelihood), "warning"
that they hold only with the caveat in the message. The messages are for a marketing reader.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from personas.features.btyd.models.base import PurchaseModel
from personas.features.btyd.models.gamma_gamma import GammaGammaModel

log = logging.getLogger(__name__)

NEAR_ZERO = 1e-4
CONCENTRATED = 10.0  # a mixing shape this large is close to one value for every customer
FLAT = 3.0  # a log-parameter standard error above this: the data do not pin it down
FEW_REPEATERS = 200  # below this many repeat buyers the estimates are rough
SPEND_CORRELATION = 0.3  # |Spearman| of frequency and mean spend beyond which GG's premise fails


def check(name: str, severity: str, message: str) -> dict[str, str]:
    """One diagnostic, logged as it is found."""
    log.warning("CLV fit check %s (%s): %s", name, severity, message)
    return {"check": name, "severity": severity, "message": message}


def purchase_checks(model: PurchaseModel, frequency: np.ndarray) -> list[dict[str, str]]:
    """Checks of a fitted purchase model: bounds, curvature, convergence, repeat buyers."""
    out = []
    # A shape parameter below 1e-4 is zero for every practical purpose (BG/NBD's a, Pareto's
    # s: no drop-out), even when the optimizer stopped before the bound itself.
    low = [k for k, v in model.params_.items() if v < NEAR_ZERO]
    bound = sorted(set(model.at_bound()) | set(low), key=list(model.params_).index)
    # An upper bound on the drop-out mixing (BG/NBD's b, Pareto/NBD's beta) while its partner
    # is large too (a concentrated mixing distribution) is a limit the model family has:
    # every customer shares one drop-out propensity. The forecasts stand; the spread of churn
    # risk between customers is lost.
    dropout = model.dropout_params
    limit = [
        k
        for k in bound
        if k not in low
        and k in dropout
        and min(model.params_[j] for j in dropout if j != k) >= CONCENTRATED
    ]
    # The same limit before the optimizer reaches the bound: every drop-out parameter large
    # and only they flat is the ridge towards it (the mean propensity a/(a+b) is pinned, the
    # spread is not). Where the optimizer stops on that ridge depends on the last bits of the
    # sums, so the verdict must not: it is the limit either way.
    if not bound and all(model.params_[j] >= CONCENTRATED for j in dropout):
        limit = [k for k in dropout if not model.log_std_errors_.get(k, 0.0) <= FLAT]
    if low or len(limit) < len(bound):
        values = ", ".join(f"{k}={model.params_[k]:.3g}" for k in bound)
        out.append(
            check(
                "parameter_at_bound",
                "degenerate",
                f"{model.name}: {values} at the optimizer's bound; the data push the model to "
                "a limit it cannot reach (for a -> 0 or s -> 0: no customer drop-out is visible)",
            )
        )
    elif limit:
        values = ", ".join(f"{k}={model.params_[k]:.3g}" for k in limit)
        where = "at the optimizer's upper bound" if bound else "large and not pinned by the data"
        out.append(
            check(
                "homogeneous_drop_out",
                "warning",
                f"{model.name}: {values} {where}: customers do not "
                "differ in how likely they are to drop out, so churn risk separates them by "
                "their purchase history alone",
            )
        )
    ridge = set(model.dropout_params) if limit else set()
    flat = [k for k, v in model.log_std_errors_.items() if not v <= FLAT and k not in ridge]
    if flat:
        out.append(
            check(
                "flat_likelihood",
                "degenerate",
                f"{model.name}: the likelihood is flat in {', '.join(flat)} (standard error of "
                f"the log-parameter above {FLAT:g}); the data do not determine "
                f"{'it' if len(flat) == 1 else 'them'}",
            )
        )
    if not model.converged_:
        out.append(check("not_converged", "degenerate", f"{model.name}: the fit did not converge"))
    repeaters = int((np.asarray(frequency) > 0).sum())
    if repeaters < FEW_REPEATERS:
        out.append(
            check(
                "few_repeat_buyers",
                "warning",
                f"only {repeaters} customers bought again (fewer than {FEW_REPEATERS}): "
                "estimates are rough",
            )
        )
    return out


def spend_checks(
    gg: GammaGammaModel, frequency: np.ndarray, monetary_value: np.ndarray
) -> list[dict[str, Any]]:
    """Gamma-Gamma's premises: a finite population mean (q > 1) and spend independent of
    frequency (Fader & Hardie 2013 check the correlation among repeat buyers)."""
    out = []
    q = gg.params_["q"]
    if q <= 1.0:
        out.append(
            check(
                "gamma_gamma_q",
                "warning",
                f"Gamma-Gamma q={q:.2f} <= 1: spend per purchase is so heavy-tailed that the "
                "average customer's spend is undefined; one-time buyers are valued at the "
                "median repeat spend",
            )
        )
    repeat = (np.asarray(frequency) > 0) & (np.asarray(monetary_value) > 0)
    if repeat.sum() >= 3:
        rho = float(spearmanr(frequency[repeat], monetary_value[repeat]).statistic)
        if abs(rho) > SPEND_CORRELATION:
            out.append(
                check(
                    "spend_frequency_correlation",
                    "warning",
                    f"spend per purchase and purchase frequency are correlated (Spearman "
                    f"{rho:+.2f}); Gamma-Gamma assumes they are independent, so CLV "
                    f"{'under' if rho > 0 else 'over'}-states the difference between frequent "
                    "and occasional buyers",
                )
            )
    return out
