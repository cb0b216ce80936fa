"""MBG/NBD: BG/NBD with drop-out possible right after the first purchase (Batislam et al. 2007).

Batislam, Denizel & Filiztekin (2007), "Empirical validation and comparison of models for
customer base analysis", IJRM 24(3). In BG/NBD a customer without repeat purchases is certainly
alive (P(alive) = 1), which over-states the activity of one-time buyers; MBG/NBD lets the coin
be tossed at the first purchase too. Everything else is BG/NBD's, with b + x - 1 read as b + x.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from personas.features.btyd.models.bgnbd import BetaGeoModel, beta_geo_loglik


def mbgnbd_loglik(
    params: np.ndarray, x: Any, t_x: Any, t_cal: Any, grad: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-customer MBG/NBD log-likelihood and its gradient in (r, α, a, b)."""
    return beta_geo_loglik(params, x, t_x, t_cal, grad, shift=1)


class ModifiedBetaGeoModel(BetaGeoModel):
    """MBG/NBD: as :class:`BetaGeoModel`, but one-time buyers can already have dropped out.

    P(alive) = 1 / (1 + a / (b + x) · ((α+T)/(α+t_x))^(r+x)) for every customer, including
    those with frequency 0; the expected purchases are BG/NBD's with b replaced by b + 1.
    """

    name = "MBG/NBD"
    loglik = staticmethod(mbgnbd_loglik)
    shift = 1
