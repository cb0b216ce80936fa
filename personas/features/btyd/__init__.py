"""Buy-'Til-You-Die customer-lifetime models: BG/NBD and its rivals, Gamma-Gamma and CLV.

Non-contractual retailers never observe a customer leaving, so churn and future value must be
inferred from the purchase log alone. The BG/NBD model (Fader, Hardie & Lee 2005, "Counting your
customers the easy way") does that from three numbers per customer: ``frequency`` (repeat
purchases), ``recency`` (time of the last purchase since the first) and ``T`` (time since the
first purchase). The Gamma-Gamma model (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value
curves"; Fader & Hardie 2013, "The Gamma-Gamma model of monetary value") adds the spend per
purchase, and the two combine into a discounted customer lifetime value.

Why a compact scipy implementation rather than a library: both likelihoods are closed-form, so a
vectorized objective with an analytical gradient fitted by L-BFGS-B needs only numpy and scipy.
Customers with the same ``(frequency, recency, T)`` are interchangeable in the likelihood, so they
are collapsed into weighted rows before optimizing (real logs are day-stamped, so a million
customers share far fewer distinct triplets), and the special functions (gammaln, digamma,
betaln) are evaluated once per distinct frequency, recency or T and gathered back. Measured on
this project's 2 shared cores (``benchmarks/bench_btyd.py``): 1M simulated customers fit in
1.2-1.4 s (+101 MB peak RSS), against 3.6 s without merging rows (27-38 s when every row also
evaluated its own special functions) and 219 s for a derivative-free Nelder-Mead fit; the package
imports in milliseconds on top of pandas and scipy. pymc-marketing 0.19 gives the same CDNOW
estimates with a flat-prior MAP fit, but its import takes 7-8 s and its first fit in a fresh
process about 23 s of graph compilation, for a dependency stack (PyMC, PyTensor, ArviZ) this
package does not need.

Layout, after pymc-marketing's ``clv/``: :mod:`~personas.features.btyd.summary` turns a
transaction log into the models' inputs; ``models/`` holds one model per module on the shared
fit of :mod:`~personas.features.btyd.models.base`; :mod:`~personas.features.btyd.lifetime_value`
combines them into CLV and scores; :mod:`~personas.features.btyd.validation` checks a fit on a
holdout period; :mod:`~personas.features.btyd.selection` fits every candidate (BG/NBD, MBG/NBD,
Pareto/NBD, NBD) on a calibration period and chooses by holdout error, with the checks of
:mod:`~personas.features.btyd.diagnostics` and the clock of :mod:`~personas.features.btyd.clock`.
BG/BB (Fader, Hardie & Shang 2010) is not here: it models discrete purchase opportunities
(one yearly gala, one issue per period), and the lake's purchases are continuous timestamps.
This module is only the face.
"""

from personas.features.btyd.clock import Clock
from personas.features.btyd.diagnostics import purchase_checks, spend_checks
from personas.features.btyd.lifetime_value import customer_lifetime_value, score_customers
from personas.features.btyd.models.base import BTYDModel, PurchaseModel
from personas.features.btyd.models.bgnbd import BetaGeoModel, bgnbd_loglik, simulate_bgnbd
from personas.features.btyd.models.gamma_gamma import (
    GammaGammaModel,
    gamma_gamma_loglik,
    simulate_gamma_gamma,
)
from personas.features.btyd.models.mbgnbd import ModifiedBetaGeoModel, mbgnbd_loglik
from personas.features.btyd.models.nbd import NBDModel, nbd_loglik
from personas.features.btyd.models.pareto_nbd import (
    ParetoNBDModel,
    pareto_nbd_loglik,
    simulate_pareto_nbd,
)
from personas.features.btyd.selection import CANDIDATES, Cohort, compare, decile_table
from personas.features.btyd.summary import holdout_cohort, rfm_summary
from personas.features.btyd.validation import holdout_report

__all__ = [
    "CANDIDATES",
    "BTYDModel",
    "BetaGeoModel",
    "Clock",
    "Cohort",
    "GammaGammaModel",
    "ModifiedBetaGeoModel",
    "NBDModel",
    "ParetoNBDModel",
    "PurchaseModel",
    "bgnbd_loglik",
    "compare",
    "customer_lifetime_value",
    "decile_table",
    "gamma_gamma_loglik",
    "holdout_cohort",
    "holdout_report",
    "mbgnbd_loglik",
    "nbd_loglik",
    "pareto_nbd_loglik",
    "purchase_checks",
    "rfm_summary",
    "score_customers",
    "simulate_bgnbd",
    "simulate_gamma_gamma",
    "simulate_pareto_nbd",
    "spend_checks",
]
