"""What every model shares: analytical gradients and the not-fitted error.

A new model adds its likelihood to the gradient check and its class to the unfitted one.
"""

from __future__ import annotations

import numpy as np
import pytest

from personas.features.btyd import (
    BetaGeoModel,
    GammaGammaModel,
    bgnbd_loglik,
    gamma_gamma_loglik,
    mbgnbd_loglik,
    nbd_loglik,
    pareto_nbd_loglik,
)

RFM = [np.array([0.0, 1, 3, 40]), np.array([0.0, 2, 20, 30]), np.array([10.0, 30, 35, 31])]


@pytest.mark.parametrize(
    ("loglik", "params", "data"),
    [
        (
            bgnbd_loglik,
            np.array([0.3, 5.0, 0.9, 2.0]),
            [np.array([0.0, 1, 3, 40]), np.array([0.0, 2, 20, 30]), np.array([10.0, 30, 35, 31])],
        ),
        (mbgnbd_loglik, np.array([0.3, 5.0, 0.9, 2.0]), RFM),
        (pareto_nbd_loglik, np.array([0.5, 10.0, 0.6, 12.0]), RFM),
        (pareto_nbd_loglik, np.array([0.5, 10.0, 0.6, 4.0]), RFM),  # β < α: the other branch
        (nbd_loglik, np.array([0.7, 50.0]), RFM),
        (
            gamma_gamma_loglik,
            np.array([6.0, 3.5, 15.0]),
            [np.array([1.0, 2, 5, 30]), np.array([10.0, 35.5, 20, 12])],
        ),
    ],
)
def test_analytical_gradient_matches_finite_differences(loglik, params, data) -> None:
    _, grad = loglik(params, *data, grad=True)
    eps = 1e-6
    for i in range(len(params)):
        step = np.zeros_like(params)
        step[i] = eps * params[i]
        up, _ = loglik(params + step, *data)
        down, _ = loglik(params - step, *data)
        np.testing.assert_allclose(grad[i], (up - down) / (2 * step[i]), rtol=1e-4, atol=1e-7)


def test_unfitted_model_says_so() -> None:
    with pytest.raises(ValueError, match="not fitted"):
        BetaGeoModel().probability_alive([1], [1], [2])
    with pytest.raises(ValueError, match="not fitted"):
        GammaGammaModel().conditional_expected_average_value([1], [1.0])
