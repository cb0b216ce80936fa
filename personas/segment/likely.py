"""Likely personas for customers without enough purchase history (prospects, one purchase).

Personas are discovered among repeat customers; prospects and first-time buyers cannot be
clustered, but they share signals with the profiled customers: attributes (region, age and
income band, household), behaviour events (product views by category, sessions, app use,
e-mail opens and clicks) and, for a first-time buyer, what the first order shows (its
categories, channel, value, discount). :class:`LikelyPersonaClassifier` learns the persona from
those signals on the profiled customers, one calibrated gradient-boosting model per stage, and
checks each on held-out profiled customers against the prior (always the largest persona). A
stage whose model does not beat the prior on both accuracy and log-loss assigns no likely
persona: a guess that is no better than "the largest persona" would only mislead a campaign.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, log_loss
from sklearn.utils.validation import check_is_fitted

from personas.features.catalog import CATEGORY_PREFIX, CHANNEL_PREFIX, VIEW_PREFIX
from personas.threads import with_model_threads

UNDECIDED = "undecided"
STAGES = ("prospect", "one_time")
#: Attributes a customer has before buying. Loyalty membership and tier are left out: they are
#: mostly earned by buying, so among prospects they say little about the persona.
ATTRIBUTES = ("country", "region", "age_band", "income_band", "household")
#: Behaviour both prospects and customers show (cart abandonment is left out: without a
#: purchase every cart is abandoned, so it would separate stages, not personas).
BEHAVIOUR = ("email_open_rate", "email_click_rate", "sessions_90d", "app_session_share")
#: What a first order shows, besides its category and channel shares.
FIRST_ORDER = ("avg_order_value", "items_per_order", "discount_share", "return_rate")
_MAX_LEVELS = 254  # HistGradientBoosting's categorical limit (255 bins, one for missing)


def signal_columns(columns: list[str] | pd.Index, stage: str) -> list[str]:
    """The columns a stage's model may use, in the order they appear in ``columns``."""
    cols = list(columns)
    want = set(ATTRIBUTES) | set(BEHAVIOUR)
    prefixes: tuple[str, ...] = (VIEW_PREFIX,)
    if stage == "one_time":
        want |= set(FIRST_ORDER)
        prefixes += (CATEGORY_PREFIX, CHANNEL_PREFIX)
    return [c for c in cols if c in want or c.startswith(prefixes)]


class LikelyPersonaClassifier(ClassifierMixin, BaseEstimator):
    """Likely persona of prospects and one-purchase customers, learnt on profiled customers.

    Parameters
    ----------
    threshold : float
        A customer whose highest calibrated probability is below it is "undecided".
    holdout : float
        Share of the profiled customers held out to check each model against the prior.
    calibration : {"sigmoid", "isotonic"}
        Calibration of the boosted trees' probabilities (two-fold cross-fitting).
    max_iter : int
        Boosting iterations (early stopping on a validation split may stop sooner).
    sample_size : int
        Profiled customers the models are fitted on at most (a stratified random sample).
    min_gain : float
        Held-out accuracy must beat the prior's by at least this much for a stage to be used.
    random_state : int
        Seed of the split, the sample and the trees.

    Attributes
    ----------
    classes_ : ndarray
        Persona ids, as in ``y``.
    signals_ : dict
        Stage -> columns its model uses.
    categories_ : dict
        Categorical column -> its levels seen in ``fit`` (others count as missing).
    models_ : dict
        Stage -> the fitted calibrated model, for the stages that beat the prior.
    evaluation_ : dict
        Stage -> held-out figures: accuracy, log-loss, the prior's, per-persona confusion
        table, a reliability curve, ``used`` and the reason.
    """

    def __init__(
        self,
        threshold: float = 0.5,
        holdout: float = 0.25,
        calibration: str = "sigmoid",
        max_iter: int = 100,
        sample_size: int = 50_000,
        min_gain: float = 0.02,
        random_state: int = 0,
    ):
        self.threshold = threshold
        self.holdout = holdout
        self.calibration = calibration
        self.max_iter = max_iter
        self.sample_size = sample_size
        self.min_gain = min_gain
        self.random_state = random_state

    @with_model_threads
    def fit(self, X: pd.DataFrame, y: Any) -> LikelyPersonaClassifier:
        """Fit one model per stage on profiled customers ``X`` with personas ``y``."""
        if not isinstance(X, pd.DataFrame):
            raise TypeError("X must be a pandas DataFrame of features (one row per customer)")
        if not 0.0 < self.holdout < 1.0:
            raise ValueError(f"holdout={self.holdout!r}; expected a share in (0, 1)")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold={self.threshold!r}; expected a probability in [0, 1]")
        if self.calibration not in ("sigmoid", "isotonic"):
            raise ValueError(f"calibration={self.calibration!r}; expected 'sigmoid' or 'isotonic'")
        y = np.asarray(y).astype(str)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
        self.classes_ = np.unique(y)
        self.prior_ = str(pd.Series(y).value_counts().sort_index().idxmax())
        self.categories_ = {}
        for c in ATTRIBUTES:
            if c in X.columns:
                top = X[c].dropna().astype(str).value_counts().index[:_MAX_LEVELS]
                self.categories_[c] = sorted(top)
        rng = np.random.default_rng(self.random_state)
        keep = _stratified(y, min(self.sample_size, len(y)), rng)
        Xs, ys = X.iloc[keep], y[keep]
        test = _stratified(ys, round(self.holdout * len(ys)), rng)
        is_test = np.zeros(len(ys), dtype=bool)
        is_test[test] = True
        self.signals_, self.models_, self.evaluation_ = {}, {}, {}
        for stage in STAGES:
            cols = signal_columns(X.columns, stage)
            self.signals_[stage] = cols
            if not cols or len(self.classes_) < 2:
                self.evaluation_[stage] = {
                    "used": False,
                    "reason": "no signal column" if not cols else "only one persona",
                }
                continue
            Z = self._matrix(Xs, cols)
            held = self._new_model(cols).fit(Z[~is_test], ys[~is_test])
            ev = _evaluate(held, Z[is_test], ys[is_test], ys[~is_test], self.prior_)
            ev["signals"] = cols
            ev["used"] = bool(
                ev["accuracy"] >= ev["prior_accuracy"] + self.min_gain
                and ev["log_loss"] < ev["prior_log_loss"]
            )
            ev["reason"] = (
                "beats the prior on held-out profiled customers"
                if ev["used"]
                else "no better than the prior (the largest persona) on held-out profiled "
                "customers: no likely persona is assigned"
            )
            self.evaluation_[stage] = ev
            if ev["used"]:
                self.models_[stage] = self._new_model(cols).fit(Z, ys)
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    @with_model_threads
    def predict_proba_stage(self, X: pd.DataFrame, stage: str) -> np.ndarray | None:
        """Calibrated probabilities (columns: ``classes_``) from a stage's model, or None."""
        check_is_fitted(self, "models_")
        model = self.models_.get(stage)
        if model is None:
            return None
        missing = [c for c in self.signals_[stage] if c not in X.columns]
        if missing:
            raise ValueError(
                f"X lacks signal column(s) {missing} the likely-persona model was fitted on; "
                "compute features with the same lake tables"
            )
        proba = model.predict_proba(self._matrix(X, self.signals_[stage]))
        out = np.zeros((len(X), len(self.classes_)))
        out[:, np.searchsorted(self.classes_, model.classes_)] = proba
        return out

    def likely(self, X: pd.DataFrame, stages: np.ndarray) -> pd.DataFrame:
        """``likely_persona`` and ``likely_probability`` per row; ``stages`` names each row's.

        Rows of another stage (repeat customers) or of a stage without a usable model get
        missing values; rows below the threshold get "undecided" with their probability.
        """
        check_is_fitted(self, "models_")
        stages = np.asarray(stages).astype(str)
        persona = np.full(len(X), None, dtype=object)
        prob = np.full(len(X), np.nan)
        for stage in self.models_:
            rows = np.flatnonzero(stages == stage)
            if rows.size == 0:
                continue
            p = self.predict_proba_stage(X.iloc[rows], stage)
            best = p.argmax(axis=1)
            top = p[np.arange(len(rows)), best]
            persona[rows] = np.where(top >= self.threshold, self.classes_[best], UNDECIDED)
            prob[rows] = top
        return pd.DataFrame({"likely_persona": persona, "likely_probability": prob}, index=X.index)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Likely persona of one-purchase customers' signals (the richer model), else prospects'."""
        stage = "one_time" if "one_time" in self.models_ else "prospect"
        return self.likely(X, np.full(len(X), stage))["likely_persona"].to_numpy()

    # ---- internals -------------------------------------------------------------------------
    def _new_model(self, cols: list[str]) -> CalibratedClassifierCV:
        cat = [c in self.categories_ for c in cols]
        trees = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            categorical_features=cat if any(cat) else None,
            early_stopping=True,
            random_state=self.random_state,
        )
        return CalibratedClassifierCV(trees, method=self.calibration, cv=2)

    def _matrix(self, X: pd.DataFrame, cols: list[str]) -> np.ndarray:
        """Numbers for the trees: categorical levels as codes (unknown -> missing)."""
        out = np.empty((len(X), len(cols)))
        for j, c in enumerate(cols):
            if c in self.categories_:
                codes = pd.Categorical(X[c].astype("string"), categories=self.categories_[c]).codes
                out[:, j] = np.where(codes < 0, np.nan, codes)
            else:
                out[:, j] = pd.to_numeric(X[c], errors="coerce").astype(float).to_numpy()
        return out


def _stratified(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted row numbers of a sample of ``n`` rows keeping each class's share."""
    if n >= len(y):
        return np.arange(len(y))
    picks = []
    for cls in np.unique(y):
        rows = np.flatnonzero(y == cls)
        k = max(1, round(n * rows.size / len(y)))
        picks.append(rng.choice(rows, min(k, rows.size), replace=False))
    return np.sort(np.concatenate(picks))


def _evaluate(
    model: CalibratedClassifierCV,
    Z: np.ndarray,
    y: np.ndarray,
    y_train: np.ndarray,
    prior: str,
) -> dict[str, Any]:
    """Held-out accuracy, log-loss, the prior's, confusion table and reliability curve."""
    classes = np.unique(np.concatenate([y, y_train]))
    proba = np.zeros((len(y), len(classes)))
    proba[:, np.searchsorted(classes, model.classes_)] = model.predict_proba(Z)
    pred = classes[proba.argmax(axis=1)]
    freq = pd.Series(y_train).value_counts(normalize=True).reindex(classes, fill_value=0.0)
    prior_proba = np.tile(np.clip(freq.to_numpy(), 1e-6, None), (len(y), 1))
    top = proba.max(axis=1)
    right = pred == y
    bins = np.minimum((top * 10).astype(int), 9)
    curve = [
        {
            "bin": f"{b / 10:.1f}-{(b + 1) / 10:.1f}",
            "customers": int((bins == b).sum()),
            "mean_probability": float(top[bins == b].mean()),
            "accuracy": float(right[bins == b].mean()),
        }
        for b in range(10)
        if (bins == b).any()
    ]
    confusion = pd.crosstab(pd.Series(y, name="persona"), pd.Series(pred, name="likely")).reindex(
        index=classes, columns=classes, fill_value=0
    )
    return {
        "held_out": len(y),
        "accuracy": float(accuracy_score(y, pred)),
        "log_loss": float(log_loss(y, proba, labels=classes)),
        "prior": prior,
        "prior_accuracy": float((y == prior).mean()),
        "prior_log_loss": float(log_loss(y, prior_proba, labels=classes)),
        "classes": [str(c) for c in classes],
        "confusion": confusion.to_numpy().tolist(),
        "reliability": curve,
    }


def place_unprofiled(
    X: pd.DataFrame,
    assignments: pd.DataFrame,
    lifecycle: np.ndarray,
    names: dict[str, str],
    threshold: float = 0.5,
    random_state: int = 0,
) -> tuple[LikelyPersonaClassifier | None, pd.DataFrame, dict[str, Any]]:
    """Fit on the profiled rows of ``assignments`` and add likely personas for the others.

    ``assignments`` is row-aligned with ``X`` (discovery's table); the returned copy has
    ``likely_persona`` (a persona id, "undecided", or empty for profiled customers and stages
    without a usable model), ``likely_persona_name`` and ``likely_probability``. The persona
    sizes are not touched: a likely persona is a guess about a future customer, not a member.
    Returns (model or None when there is nothing to learn from, assignments, metrics block).
    """
    out = assignments.copy()
    profiled = out["profiled"].to_numpy(bool)
    block: dict[str, Any] = {"threshold": threshold, "stages": {}, "counts": {}}
    out["likely_persona"] = pd.Series([None] * len(out), dtype=object)
    out["likely_persona_name"] = pd.Series([None] * len(out), dtype=object)
    out["likely_probability"] = np.nan
    if profiled.sum() < 20 or out.loc[profiled, "persona_id"].nunique() < 2:
        block["reason"] = "fewer than two personas to learn from"
        return None, out, block
    clf = LikelyPersonaClassifier(threshold=threshold, random_state=random_state)
    clf.fit(X.loc[profiled], out.loc[profiled, "persona_id"].to_numpy())
    return clf, *place_with(clf, X, out, lifecycle, names)


def place_with(
    clf: LikelyPersonaClassifier,
    X: pd.DataFrame,
    assignments: pd.DataFrame,
    lifecycle: np.ndarray,
    names: dict[str, str],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Likely personas from an already fitted classifier (an assign run keeps its model's).

    The held-out figures are the classifier's own, from when it was fitted.
    """
    out = assignments.copy()
    for col in ("likely_persona", "likely_persona_name"):  # discovery's column order
        if col not in out:
            out[col] = pd.Series([None] * len(out), dtype=object, index=out.index)
    profiled = out["profiled"].to_numpy(bool)
    block: dict[str, Any] = {"threshold": clf.threshold, "stages": clf.evaluation_, "counts": {}}
    stages = np.where(profiled, "repeat", np.asarray(lifecycle).astype(str))
    got = clf.likely(X, stages)
    out["likely_persona"] = got["likely_persona"].to_numpy()
    out["likely_probability"] = np.round(got["likely_probability"].to_numpy(float), 6)
    label = {**names, UNDECIDED: "Undecided (no persona is likely enough)"}
    out["likely_persona_name"] = [
        label.get(p) if p is not None else None for p in out["likely_persona"]
    ]
    for stage in STAGES:
        rows = stages == stage
        vc = out.loc[rows, "likely_persona"].fillna("none").value_counts()
        block["counts"][stage] = {str(k): int(v) for k, v in vc.sort_index().items()}
    return out, block
