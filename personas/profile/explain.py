"""Why a customer is in a persona: distinguishing traits and short rules with stated accuracy.

Traits compare each persona with the other personas: the standardised difference (Cohen's d
with the pooled standard deviation) says how far apart they are in units a statistician
trusts, and the lift (persona mean / population mean) says it in units a marketer reads
("2.3x the average order value"). Effect sizes are computed on the scale the clustering sees
(heavy-tailed features log-transformed), so a handful of wholesalers cannot inflate the
standard deviation and hide a real difference; the means shown stay in the original units.

Rules come from shallow decision trees trained to reproduce the assignment, one per persona
("in this persona or not"): a card then reads "customers who ... and ... are P3", and each
rule states its precision (share of the customers it covers who are in the persona) and
coverage (share of the persona it covers). A customer is placed by the persona tree most sure
of it; the *fidelity* is the share of customers placed in the same persona as the model. Rules
are only as trustworthy as that number, so it is always reported next to them. (Measured on
the demo data: one multi-class tree of depth 4 reaches 0.87, one tree per persona 0.99.)

The trees are fitted on a sample stratified by persona (``RULE_SAMPLE`` = 50,000 profiled
customers by default) and everything they report is counted on *all* profiled customers:
fidelity, per-persona fidelity, and each rule's customers, coverage and precision. Only the
split thresholds come from the sample. Fitting six depth-4 trees on 970k customers took 82 s;
on 50,000 a few seconds, and a leaf then still holds at least 250 sampled customers (0.5%), so
a threshold is placed by hundreds of customers on either side and a leaf's share of the
persona is estimated to within about +-3 points (binomial standard error at 250) before it is
recounted exactly on everyone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.tree import DecisionTreeClassifier

from personas.features.catalog import label, lookup


@dataclass
class Trait:
    feature: str
    label: str
    persona_mean: float
    others_mean: float
    population_mean: float
    effect_size: float
    lift: float | None
    direction: str

    def text(self) -> str:
        """Plain-language statement, e.g. 'Net spend 2.3x the average'."""
        try:
            f = lookup(self.feature)
            val = f.format(self.persona_mean)
        except KeyError:
            val = f"{self.persona_mean:,.2f}"
        if (
            self.lift is not None
            and np.isfinite(self.lift)
            and self.population_mean > 0
            and self.lift >= 0
        ):
            if self.lift >= 1.05:
                rel = f"{self.lift:.1f}x the average"
            elif self.lift <= 0.95:
                rel = f"{(1 - self.lift):.0%} below average"
            else:
                rel = "about average"
        else:
            rel = "higher than others" if self.direction == "higher" else "lower than others"
        return f"{self.label}: {val} ({rel})"


# Redundant or non-ratio-scale features are not listed as traits: value indices have their own
# profile, P(alive) mirrors churn risk and 90-day expectations (and the days to the next
# purchase, blank for one-purchase customers) mirror the 365-day ones.
NOT_TRAITS = ("p_alive", "expected_purchases_90d", "expected_days_to_next_purchase")


def trait_features(features: list[str]) -> list[str]:
    return [f for f in features if f not in NOT_TRAITS and not f.startswith("value_")]


def ratio_scale(feature: str) -> bool:
    """Lift (a ratio of means) is meaningless for the -1..1 value indices (callers also need a
    positive population mean)."""
    return not feature.startswith("value_")


def traits(
    X: pd.DataFrame,
    labels: np.ndarray,
    features: list[str],
    top: int = 6,
    min_effect: float = 0.2,
    names: dict[str, str] | None = None,
) -> dict[int, list[Trait]]:
    """The features that most set each persona apart from the other profiled customers.

    Customers not profiled (labels < 0) are left out of both sides of the comparison: a
    persona is explained against the other personas, not against one-time buyers.
    """
    out: dict[int, list[Trait]] = {}
    keep = labels >= 0
    X, labels = X.loc[keep], labels[keep]
    features = trait_features(features)
    num = X[features].apply(pd.to_numeric, errors="coerce")
    pop = num.mean()
    raw, tamed = GroupMoments.of(num, labels), GroupMoments.of(effect_scale(num), labels)
    for p in sorted(int(v) for v in np.unique(labels) if v >= 0):
        ma, mb = raw.mean.loc[p], raw.rest(p)[1]
        d = tamed.cohens_d(p)
        rows = []
        for f in features:
            if not np.isfinite(d[f]) or abs(d[f]) < min_effect:
                continue
            lift = (
                float(ma[f] / pop[f])
                if ratio_scale(f) and pop[f] > 0 and ma[f] >= 0 and np.isfinite(pop[f])
                else None
            )
            rows.append(
                Trait(
                    f,
                    label(f, names),
                    float(ma[f]),
                    float(mb[f]),
                    float(pop[f]),
                    float(d[f]),
                    lift,
                    "higher" if d[f] > 0 else "lower",
                )
            )
        rows.sort(key=lambda t: (-abs(t.effect_size), t.feature))
        out[p] = rows[:top]
    return out


def effect_scale(num: pd.DataFrame) -> pd.DataFrame:
    """Signed log of heavy-tailed columns (as in preprocessing), others unchanged."""
    from personas.segment.preprocess import is_skewed, signed_log1p

    out = num.copy()
    for c in num.columns:
        if is_skewed(num[c]):
            out[c] = signed_log1p(num[c].to_numpy(dtype=float))
    return out


@dataclass
class GroupMoments:
    """Per-persona count, mean and centred sum of squares of every column, from one pass.

    A persona against the other profiled customers needs the complement's moments too; they
    are combined from the other groups' (Chan et al.'s pairwise formula), so no comparison
    copies the table (at 1M customers the copies took 30 of the profiles' 50 CPU-s).
    """

    count: pd.DataFrame
    mean: pd.DataFrame
    m2: pd.DataFrame

    @classmethod
    def of(cls, num: pd.DataFrame, labels: np.ndarray) -> GroupMoments:
        g = num.groupby(np.asarray(labels), sort=True)
        count = g.count().astype(float)
        return cls(count, g.mean(), (g.var(ddof=0) * count).fillna(0.0))

    def rest(self, k: int) -> tuple[pd.Series, pd.Series, pd.Series]:
        """(count, mean, m2) of every group but ``k`` taken together."""
        others = self.count.index != k
        c, m = self.count[others], self.mean[others].fillna(0.0)
        n = c.sum()
        mean = (c * m).sum() / n.replace(0, np.nan)
        m2 = self.m2[others].sum() + (c * (m - mean) ** 2).sum()
        return n, mean, m2

    def cohens_d(self, k: int) -> pd.Series:
        """:func:`cohens_d` of group ``k`` against the rest, from the moments."""
        na, ma, m2a = self.count.loc[k], self.mean.loc[k], self.m2.loc[k]
        nb, mb, m2b = self.rest(k)
        pooled = np.sqrt((m2a + m2b) / (na + nb - 2).clip(lower=1))
        d = (ma - mb) / pooled.replace(0, np.nan)
        return d.where((na > 1) & (nb > 1))  # a variance needs two values on each side


def cohens_d(a: pd.DataFrame, b: pd.DataFrame) -> pd.Series:
    """Standardised mean difference per column with the pooled standard deviation."""
    va, vb = a.var(ddof=1), b.var(ddof=1)
    na, nb = a.notna().sum(), b.notna().sum()
    pooled = np.sqrt(((na - 1) * va + (nb - 1) * vb) / (na + nb - 2).clip(lower=1))
    return (a.mean() - b.mean()) / pooled.replace(0, np.nan)


RULE_SAMPLE = 50_000


def stratified_sample(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted positions of about ``size`` rows, each label keeping its share (at least one)."""
    if len(labels) <= size:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    parts = []
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        take = min(len(members), max(1, round(size * len(members) / len(labels))))
        parts.append(rng.choice(members, take, replace=False))
    return np.sort(np.concatenate(parts))


@dataclass
class Rules:
    """Readable rules per persona from a shallow surrogate tree."""

    fidelity: float
    depth: int
    per_persona: dict[int, list[dict]]
    persona_fidelity: dict[int, float]


def surrogate_rules(
    X: pd.DataFrame,
    labels: np.ndarray,
    features: list[str],
    max_depth: int = 4,
    min_leaf_share: float = 0.005,
    random_state: int = 0,
    names: dict[str, str] | None = None,
    sample: int | None = RULE_SAMPLE,
) -> Rules:
    """Depth-limited trees on the original features that mimic the persona assignment.

    Fitted on a stratified sample of ``sample`` profiled customers (``None``: all of them);
    fidelity, coverage and precision are counted on all profiled customers.
    """
    mask = labels >= 0
    features = [f for f in features if pd.api.types.is_numeric_dtype(X[f])]
    Xf = X.loc[mask, features].apply(pd.to_numeric, errors="coerce")
    Xf = Xf.fillna(Xf.median()).to_numpy(dtype=np.float32)
    y = labels[mask]
    fit = stratified_sample(y, sample or len(y), random_state)
    ks = sorted(int(k) for k in np.unique(y))
    leaf = max(5, int(min_leaf_share * len(fit)))
    proba = np.zeros((len(y), len(ks)))
    per_persona: dict[int, list[dict]] = {}
    depth = 0
    for j, k in enumerate(ks):
        target = y == k
        tree = DecisionTreeClassifier(
            max_depth=max_depth, min_samples_leaf=leaf, random_state=random_state
        ).fit(Xf[fit], target[fit])
        depth = max(depth, int(tree.get_depth()))
        pos = list(tree.classes_).index(True) if True in tree.classes_ else None
        proba[:, j] = tree.predict_proba(Xf)[:, pos] if pos is not None else 0.0
        node = tree.apply(Xf)  # recount every leaf on all profiled customers
        n_nodes = tree.tree_.node_count
        counts = (
            np.bincount(node, minlength=n_nodes),
            np.bincount(node, weights=target, minlength=n_nodes),
        )
        per_persona[k] = _leaf_rules(tree, features, int(target.sum()), names, counts)
    placed = np.asarray(ks)[proba.argmax(axis=1)]
    fidelity = float((placed == y).mean())
    per_fid = {k: float((placed[y == k] == k).mean()) for k in ks}
    return Rules(fidelity, depth, per_persona, per_fid)


def _leaf_rules(
    tree: DecisionTreeClassifier,
    features: list[str],
    members: int,
    names: dict[str, str] | None = None,
    counts: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[dict]:
    """Leaves where the persona is the majority, as condition lists, best first.

    ``counts`` = (customers, persona members) per tree node, counted on all profiled
    customers; without it the tree's own (training) counts are used.
    """
    t = tree.tree_
    classes = list(tree.classes_)
    if True not in classes:
        return []
    pos = classes.index(True)
    out: list[dict] = []

    def walk(node: int, conds: list[tuple[str, str, float]]) -> None:
        if t.children_left[node] == -1:
            if counts is None:
                both = t.value[node][0] * t.weighted_n_node_samples[node]
                n, inside = int(t.n_node_samples[node]), float(both[pos])
            else:
                n, inside = int(counts[0][node]), float(counts[1][node])
            precision = inside / n if n else 0.0
            if precision > 0.5:
                out.append(
                    {
                        "conditions": [
                            _cond_text(f, op, thr, names) for f, op, thr in _simplify(conds)
                        ],
                        "customers": n,
                        "coverage": inside / max(members, 1),
                        "precision": precision,
                    }
                )
            return
        f = features[t.feature[node]]
        thr = float(t.threshold[node])
        walk(t.children_left[node], [*conds, (f, "<=", thr)])
        walk(t.children_right[node], [*conds, (f, ">", thr)])

    walk(0, [])
    out.sort(key=lambda r: (-r["coverage"] * r["precision"], -r["precision"]))
    return out


def _simplify(conds: list[tuple[str, str, float]]) -> list[tuple[str, str, float]]:
    """Keep the tightest bound per feature and direction (x <= 5 and x <= 3 -> x <= 3)."""
    best: dict[tuple[str, str], float] = {}
    for f, op, thr in conds:
        key = (f, op)
        if key not in best:
            best[key] = thr
        else:
            best[key] = min(best[key], thr) if op == "<=" else max(best[key], thr)
    return [(f, op, thr) for (f, op), thr in best.items()]


def _cond_text(feature: str, op: str, thr: float, names: dict[str, str] | None = None) -> str:
    try:
        f = lookup(feature)
        val = f.format(thr)
    except KeyError:
        val = f"{thr:,.2f}"
    word = "at most" if op == "<=" else "over"
    return f"{label(feature, names)} {word} {val}"
