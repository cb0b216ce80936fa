"""What every BTYD model shares: input checks, merged rows and the penalised likelihood fit.

A model is a per-customer log-likelihood with its gradient, ``loglik(params, *columns,
grad=False)``, plus the predictions its parameters give. :class:`BTYDModel` fits any such
likelihood the same way: identical rows are merged into weighted ones (:func:`compress`), each
column becomes a :class:`Levels` so special functions run once per distinct value, and L-BFGS-B
maximises the weighted mean log-likelihood over log-parameters (positive, scale-free) inside
:data:`LOG_BOUNDS`. A new model (MBG/NBD, Pareto/NBD, BG/BB) is one module defining its
likelihood, parameter names, starting point and predictions.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeResult, minimize

# Optimizer box on log-parameters: wide enough for any plausible cohort, narrow enough that
# exp() never overflows and gammaln() stays finite.
LOG_BOUNDS = (-12.0, 12.0)
ArrayLike = Sequence[float] | np.ndarray | pd.Series


# --------------------------------------------------------------------------- input checks


def as_float(values: ArrayLike, name: str) -> np.ndarray:
    """``values`` as a flat float array; NaN or infinity is refused, naming the input."""
    arr = np.asarray(values, dtype=float).ravel()
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; drop or fill those customers.")
    return arr


def check_rfm(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate the (frequency, recency, T) triplets shared by every BG/NBD method."""
    x, t_x, t_cal = (
        as_float(v, n) for v, n in ((frequency, "frequency"), (recency, "recency"), (T, "T"))
    )
    if not (len(x) == len(t_x) == len(t_cal)):
        raise ValueError(
            f"frequency, recency and T must have the same length; got {len(x)}, {len(t_x)}, "
            f"{len(t_cal)}."
        )
    tol = 1e-9 * max(1.0, float(t_cal.max(initial=0.0)))
    checks = (
        (x < 0, "frequency is negative", "frequency counts repeat purchases (>= 0)"),
        (t_x < 0, "recency is negative", "recency is last minus first purchase time (>= 0)"),
        (
            t_x > t_cal + tol,
            "recency > T",
            "T must be measured to the calibration end, after the last purchase",
        ),
        (
            (x == 0) & (t_x > tol),
            "recency > 0 with frequency == 0",
            "a customer without repeat purchases has recency 0",
        ),
    )
    for bad, what, fix in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{what} for {int(bad.sum())} customer(s), e.g. row {i}: frequency={x[i]}, "
                f"recency={t_x[i]}, T={t_cal[i]}; {fix}. rfm_summary() builds valid triplets."
            )
    return x, t_x, t_cal


def check_weights(weights: ArrayLike | None, n: int) -> np.ndarray:
    """Customers per row (one each by default): ``n`` non-negative numbers."""
    if weights is None:
        return np.ones(n)
    w = as_float(weights, "weights")
    if len(w) != n or (w < 0).any():
        raise ValueError(
            f"weights must be {n} non-negative counts (customers per row); got {len(w)} values "
            f"with minimum {w.min(initial=0.0)}."
        )
    return w


def compress(columns: list[np.ndarray], weights: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Collapse identical rows into one row carrying the summed weight.

    The likelihood depends on a customer only through these columns, so this is exact; on
    day-stamped data it leaves a third of the rows or fewer (1M simulated customers over two
    years: 327k rows; CDNOW: 2,357 customers, 1,016 rows).
    """
    # sorted: the rows (and so the likelihood's summation order) must not depend on the order
    # the customers arrived in, which a multi-threaded query does not fix; on a flat likelihood
    # the last bits moved the optimum (p_alive differed between two builds of one lake)
    frame = pd.DataFrame({f"c{i}": c for i, c in enumerate(columns)})
    frame["w"] = weights
    grouped = frame.groupby(list(frame.columns[:-1]), sort=True)["w"].sum().reset_index()
    return [grouped[f"c{i}"].to_numpy() for i in range(len(columns))], grouped["w"].to_numpy()


# --------------------------------------------------------------------------- likelihood


class Levels:
    """A column and its distinct values: a function of the column is evaluated per value.

    In the likelihoods most terms depend on a customer only through one column with few
    distinct values (frequency is a small integer, recency and T whole days), so special
    functions (gammaln, digamma, betaln) run on a few hundred values and are gathered back,
    instead of on every row at every optimizer step (491,232 distinct BG/NBD rows: 125 -> 79 ms
    a step; what is left is per-row arithmetic such as logaddexp).
    """

    def __init__(self, values: np.ndarray) -> None:
        self.values = np.asarray(values, dtype=float)
        self._pairs: dict[int, Levels] = {}

    def paired(self, other: Levels) -> Levels:
        """``other`` and this column taken together (:func:`joint`), prepared once per pair."""
        if id(other) not in self._pairs:
            self._pairs[id(other)] = joint(other.values, self.values)
        return self._pairs[id(other)]

    @cached_property
    def _codes(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.is_joint:
            uniq, index = np.unique(self.values, return_inverse=True)
            return uniq, index.reshape(-1)
        # Rows of several columns: one integer key from each column's codes, because
        # np.unique(axis=0) sorts structured rows (2 s for 327k pairs; this way 0.1 s).
        key = np.zeros(len(self.values), dtype=np.int64)
        for column in self.values.T:
            _, codes = np.unique(column, return_inverse=True)
            key = key * (int(codes.max(initial=0)) + 1) + codes.reshape(-1)
        _, first, index = np.unique(key, return_index=True, return_inverse=True)
        return self.values[first], index.reshape(-1)

    @property
    def is_joint(self) -> bool:
        """Whether this is several columns taken together (:func:`joint`)."""
        return self.values.ndim == 2

    @cached_property
    def log(self) -> np.ndarray:
        """``log(values)``, taken once (it does not depend on the parameters)."""
        return np.log(self.values)

    def map(self, fn: Any) -> np.ndarray:
        """``fn(values)``, computed on the distinct values only."""
        uniq, index = self._codes
        out = fn(*uniq.T) if self.is_joint else fn(uniq)
        return np.asarray(out, dtype=float)[..., index]


def joint(*columns: np.ndarray) -> Levels:
    """Columns taken together: ``map(fn)`` calls ``fn(*columns)`` once per distinct row.

    For terms that depend on two columns at once (Pareto/NBD's hypergeometric function of
    frequency and recency), which still have far fewer distinct pairs than rows.
    """
    return Levels(np.column_stack([np.asarray(c, dtype=float) for c in columns]))


def as_levels(a: Any) -> Levels:
    """``a`` as :class:`Levels`, so a likelihood takes arrays or prepared columns alike."""
    return a if isinstance(a, Levels) else Levels(a)


def _neg_mean_loglik(
    loglik: Any, data: list[np.ndarray], weights: np.ndarray, penalizer: float
) -> Any:
    """Objective in log-parameter space: weighted mean negative log-likelihood plus an L2 term.

    Averaging (not summing) keeps the gradient scale independent of the number of customers,
    so the same tolerances work for 2,000 and 1,000,000 customers; the L2 penalty on the
    parameters mirrors lifetimes' ``penalizer_coef``.
    """
    total = weights.sum()

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.exp(log_params)
        ll, g = loglik(params, *data, grad=True)
        value = -(weights @ ll) / total + penalizer * np.sum(params**2)
        grad = -(g @ weights) / total + 2.0 * penalizer * params
        return float(value), grad * params  # chain rule for log-parameters

    return objective


def _minimize(objective: Any, n_params: int, x0: np.ndarray | None = None) -> Any:
    """L-BFGS-B on log-parameters: positivity for free, and a scale-free search."""
    start = np.zeros(n_params) if x0 is None else x0
    low, high = LOG_BOUNDS
    result = minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=[LOG_BOUNDS] * n_params,
        options={"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-9},
    )
    # The tolerances above are deliberately tight; on a flat ridge (e.g. no detectable
    # drop-out: a -> 0, b -> inf, the NBD limit) the line search then stops on rounding noise
    # ("ABNORMAL") at a point that is optimal for every practical purpose. Judge convergence
    # by the projected gradient of the mean log-likelihood instead of the optimizer's flag
    # (and, where that is not small enough, by the Newton decrement: see ``_maximize``).
    result.projected_jac = np.where(
        ((result.x <= low) & (result.jac > 0)) | ((result.x >= high) & (result.jac < 0)),
        0.0,
        result.jac,
    )
    result.success = bool(result.success or np.max(np.abs(result.projected_jac)) < 1e-5)
    return result


# --------------------------------------------------------------------------- base class


class BTYDModel:
    """A population model fitted by penalised maximum likelihood on log-parameters.

    Subclasses set ``param_names`` and ``loglik`` (per-customer log-likelihood and gradient)
    and call :meth:`_maximize` from ``fit``; the fitted values land in ``params_``.

    Parameters
    ----------
    penalizer : float, default 0.0
        L2 penalty on the parameters.
    """

    param_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, penalizer: float = 0.0) -> None:
        self.penalizer = penalizer

    @staticmethod
    def loglik(
        params: np.ndarray, *columns: Any, grad: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-customer log-likelihood and, with ``grad``, its gradient (one row per parameter)."""
        raise NotImplementedError

    def _check_penalizer(self) -> None:
        if self.penalizer < 0:
            raise ValueError(f"penalizer={self.penalizer} must be >= 0.")

    def _maximize(
        self, columns: list[np.ndarray], weights: np.ndarray, x0: np.ndarray
    ) -> OptimizeResult:
        """Fit on (merged) rows with ``weights`` customers each, from log-parameters ``x0``.

        Sets ``params_``, ``log_likelihood_`` (total, unpenalized), ``n_customers_`` and
        ``converged_``; returns the optimizer's result.
        """
        data = [Levels(c) for c in columns]
        objective = _neg_mean_loglik(self.loglik, data, weights, self.penalizer)
        result = _minimize(objective, len(self.param_names), np.clip(x0, *LOG_BOUNDS))
        params = np.exp(result.x)
        self.params_ = dict(zip(self.param_names, params.tolist(), strict=True))
        self.log_likelihood_ = float(weights @ self.loglik(params, *data)[0])
        self.n_customers_ = round(float(weights.sum()))
        hess = observed_information(self.loglik, data, weights, result.x)
        if not result.success:
            # On an ill-conditioned ridge L-BFGS can stop with a gradient just above the
            # tolerance in a direction the data pin down tightly (measured: 1.4e-5 in log r
            # and log alpha at a homogeneous drop-out limit). What matters is what the fit
            # could still gain: half the Newton decrement over the curved directions, in nats
            # of the total log-likelihood.
            gain = newton_gain(hess, result.projected_jac * weights.sum())
            result.success = gain < CONVERGED_NATS
        if not result.success:
            warnings.warn(
                f"MLE did not converge ({result.message}); check the data or raise penalizer.",
                RuntimeWarning,
                stacklevel=3,  # the caller of fit(): _maximize <- fit
            )
        self.converged_ = bool(result.success)
        self.log_std_errors_ = std_errors_from(hess, self.param_names)
        return result

    def _params(self) -> tuple[float, ...]:
        if not hasattr(self, "params_"):
            raise ValueError(f"This {type(self).__name__} is not fitted yet; call fit() first.")
        return tuple(self.params_[name] for name in self.param_names)

    def at_bound(self, margin: float = 0.5) -> list[str]:
        """Parameters whose estimate sits within ``margin`` (log units) of the optimizer's box.

        An estimate there is the box's, not the data's: the likelihood kept improving towards
        0 or infinity (BG/NBD's a -> 0 when the data show no drop-out).
        """
        low, high = LOG_BOUNDS
        return [
            name
            for name, value in self.params_.items()
            if not low + margin < np.log(value) < high - margin
        ]


CONVERGED_NATS = 1e-3  # a fit that could still gain less total log-likelihood has converged


def observed_information(
    loglik: Any, data: list[Levels], weights: np.ndarray, log_params: np.ndarray
) -> np.ndarray:
    """Hessian of the total negative log-likelihood in log-parameters at ``log_params``.

    By forward differences of the gradient (k + 1 gradient evaluations; the error of order
    1e-4 is immaterial for a standard error or a convergence check).
    """
    total = weights.sum()
    objective = _neg_mean_loglik(loglik, data, weights, 0.0)
    k, h = len(log_params), 1e-4
    hess = np.empty((k, k))
    at = objective(log_params)[1]
    for i in range(k):
        step = np.zeros(k)
        step[i] = h
        hess[i] = (objective(log_params + step)[1] - at) / h
    return (hess + hess.T) / 2 * total


def _curvature(hess: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenvalues, eigenvectors and the mask of the flat (near zero curvature) directions."""
    eig, vec = np.linalg.eigh(hess)
    flat = eig <= 1e-8 * max(float(np.abs(eig).max()), 1e-300)
    return eig, vec, flat


def newton_gain(hess: np.ndarray, grad: np.ndarray) -> float:
    """Log-likelihood a Newton step would still gain (half the decrement g' H+ g) over the
    curved directions: along a flat one the fit is at the model family's limit, not unfinished.
    """
    if not (np.all(np.isfinite(hess)) and np.all(np.isfinite(grad))):
        return float("inf")
    eig, vec, flat = _curvature(hess)
    proj = vec[:, ~flat].T @ grad
    return float(0.5 * np.sum(proj**2 / eig[~flat]))


def std_errors_from(hess: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Asymptotic standard errors of the log-parameters from the curvature at the optimum.

    A flat direction (a parameter the data do not pin down) shows as a huge or infinite
    error: 1.0 means the estimate is uncertain by a factor e either way.
    """
    if not np.all(np.isfinite(hess)):
        return dict.fromkeys(names, float("inf"))
    # Directions of (near) zero curvature are flat; a parameter that moves along one has an
    # infinite error, the others keep theirs (from the pseudo-inverse on the curved rest).
    eig, vec, flat = _curvature(hess)
    inv = (vec[:, ~flat] / eig[~flat]) @ vec[:, ~flat].T
    errors = np.sqrt(np.maximum(np.diag(inv), 0.0))
    errors[np.any(np.abs(vec[:, flat]) > 0.1, axis=1)] = np.inf
    return dict(zip(names, errors.tolist(), strict=True))


class PurchaseModel(BTYDModel):
    """A model of repeat purchasing and silent drop-out, fitted on (frequency, recency, T).

    Subclasses give the likelihood, a starting point and the three predictions every model
    of the family makes: :meth:`expected_purchases` (a new customer),
    :meth:`probability_alive` and :meth:`conditional_expected_purchases` (a customer with a
    history). Those are what holdout validation, model choice and scoring use, so any
    subclass can be compared and chosen by :mod:`personas.features.btyd.selection`.

    Parameters
    ----------
    penalizer : float, default 0.0
        L2 penalty on the parameters.
    compress : bool, default True
        Merge customers with identical (frequency, recency, T) into weighted rows before
        optimizing. The estimates are the same either way; ``False`` exists so the benchmark
        can measure what compression buys.
    """

    name: ClassVar[str] = ""
    dropout_params: ClassVar[tuple[str, ...]] = ()  # the drop-out process's mixing parameters

    def __init__(self, penalizer: float = 0.0, compress: bool = True) -> None:
        super().__init__(penalizer)
        self.compress = compress

    def start(self, data: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
        """Starting log-parameters: zeros, with the rate scale at the mean purchase rate."""
        raise NotImplementedError

    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> PurchaseModel:
        """Estimate the parameters; ``weights`` count customers per row for aggregated data."""
        self._check_penalizer()
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        if len(x) == 0:
            raise ValueError("No customers to fit: frequency, recency and T are empty.")
        w = check_weights(weights, len(x))
        data, w = compress([x, t_x, t_cal], w) if self.compress else ([x, t_x, t_cal], w)
        result = self._maximize(data, w, self.start(data, w))
        self.n_unique_ = len(w)
        self.n_iter_ = int(result.nit)
        return self

    def expected_purchases(self, t: ArrayLike | float) -> np.ndarray:
        """Expected repeat purchases in (0, t] for a newly acquired customer."""
        raise NotImplementedError

    def probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """P(still active at T | history)."""
        raise NotImplementedError

    def purchases_if_alive(
        self, t: ArrayLike | float, frequency: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """Expected repeat purchases in (T, T+t] of a customer known to be alive at T."""
        raise NotImplementedError

    def conditional_expected_purchases(
        self, t: ArrayLike | float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """Expected repeat purchases in (T, T+t] given each customer's history:
        P(alive at T) times the purchases of a customer alive at T."""
        x, _, t_cal = check_rfm(frequency, recency, T)
        return self.probability_alive(x, recency, t_cal) * self.purchases_if_alive(t, x, t_cal)

    def expected_wait_if_alive(self, frequency: ArrayLike, T: ArrayLike) -> np.ndarray:
        """Expected time to the next purchase of a customer active at T, in the model's units.

        In every model of the family an active customer buys at a Poisson rate λ and, given
        the history and being active, λ ~ Gamma(r + x, α + T) (the drop-out process does not
        change the rate's posterior). The wait to the next purchase is then exponential with
        mean E[1/λ] = (α + T) / (r + x - 1), finite only when r + x > 1 (NaN otherwise).
        Drop-out is left out on purpose: it is P(alive)'s job; in BG/NBD and MBG/NBD an
        active customer drops out only after a purchase, so the next one is certain.
        """
        x, _, t_cal = check_rfm(frequency, np.zeros_like(np.asarray(frequency, float)), T)
        r, alpha = self.params_["r"], self.params_["alpha"]
        shape = r + x - 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(shape > 0, (alpha + t_cal) / shape, np.nan)


def rate_scale(data: list[np.ndarray], weights: np.ndarray) -> float:
    """log(1 / mean purchase rate): starts α (or β) on the data's time scale (days vs weeks)."""
    rate = max(float(weights @ data[0]) / max(float(weights @ data[2]), 1e-12), 1e-3)
    return float(np.log(1.0 / rate))
