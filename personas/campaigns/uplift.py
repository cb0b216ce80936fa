"""Response and uplift per campaign, variant and persona: the "what works for whom" table.

For a campaign with a control arm, every variant (message) is compared with the campaign's
control customers, overall and within each persona: counts per arm, response rates, the uplift
of visits and conversions with Newcombe's hybrid score interval and of spend per contact with
a bootstrap interval (:mod:`.stats`), and incremental conversions and spend per 1,000
contacts. A campaign without a control arm gets response rates only, labelled not causal.
Rows about fewer customers (both arms) than the minimum persona size are not published; cells
with a thin arm are flagged, not hidden.

Contacted prospects and first-time buyers are not members of any persona; where the run gave
them a *likely* persona (``likely_persona`` in the assignments) they get rows of their own,
marked ``likely: true`` and named "Likely: ..." ("undecided" ones pooled as such). These rows
are guesses about future customers: they never add to a persona's size or advice.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from personas.campaigns.stats import bootstrap_mean_diff, newcombe, wilson

OUTCOMES = ("visit", "conversion")
SMALL_ARM = 100  # customers in an arm below which a cell is flagged
SMALL_EVENTS = 5  # responders in an arm below which a cell is flagged
METHOD = {
    "rates": "95% interval of the difference of response rates (treatment - control) by "
    "Newcombe's hybrid score method (method 10 of Newcombe 1998: the difference of the arms' "
    "Wilson score intervals)",
    "spend": "95% percentile bootstrap interval of the difference of mean spend per contact "
    "(each arm resampled on its own, 2,000 resamples; in an arm with more than 10,000 spenders "
    "each resample's total spend is drawn from its normal limit)",
    "small_cell": f"an arm with fewer than {SMALL_ARM} customers or fewer than {SMALL_EVENTS} "
    "responders: the interval is wide and the sign may be unreliable",
    "not_causal": "campaigns without a control arm: response rates of contacted customers only; "
    "they say who responded, not what the campaign caused",
    "likely": "rows named 'Likely: ...' are contacted prospects and first-time buyers grouped by "
    "the persona they are likely to become (a classifier's guess, read from the run's "
    "assignments after the campaign; 'undecided' where no persona was likely enough); they are "
    "not members and not counted in any persona's size",
}
LIKELY_PREFIX = "Likely: "


def uplift_table(
    contacts: pd.DataFrame,
    assignments: pd.DataFrame | None,
    min_size: int,
    response: str = "conversion",
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """The uplift report (a JSON-ready dict) from contacts and persona assignments.

    ``contacts`` is :func:`personas.campaigns.exposure.contacts`; ``assignments`` has
    customer_id, persona_id, persona_name (a run's assignments). ``response`` is the outcome
    the verdicts ("raised" / "lowered" / "no clear effect") are about.
    """
    if response not in OUTCOMES:
        raise ValueError(f"response={response!r}; expected one of {', '.join(OUTCOMES)}")
    df = contacts.copy()
    likely_cols = ["likely_persona", "likely_persona_name"]
    if assignments is not None and len(assignments):
        cols = ["customer_id", "persona_id", "persona_name"]
        cols += [c for c in likely_cols if c in assignments.columns]
        a = assignments[cols].copy()
        a[cols[:3]] = a[cols[:3]].astype(str)
        df = df.merge(a, on="customer_id", how="left")
    else:
        df["persona_id"] = None
        df["persona_name"] = None
    for c in likely_cols:
        if c not in df.columns:
            df[c] = None
    df["likely_persona_name"] = df["likely_persona_name"].fillna(df["likely_persona"])
    df["persona_id"] = df["persona_id"].fillna("unassigned")
    df["persona_name"] = df["persona_name"].fillna("Not in this run")
    unknown = sorted(set(df["arm"]) - {"treatment", "control"})
    campaigns = []
    for name, c in df.groupby("campaign", sort=True):
        campaigns.append(_campaign(str(name), c, min_size, response, n_boot, seed))
    return {
        "method": METHOD,
        "response": response,
        "min_size": int(min_size),
        "unknown_arms": unknown,
        "campaigns": campaigns,
    }


def _campaign(
    name: str, c: pd.DataFrame, min_size: int, response: str, n_boot: int, seed: int
) -> dict[str, Any]:
    control = c[c["arm"] == "control"]
    treated = c[c["arm"] == "treatment"]
    has_control = len(control) > 0
    rows: list[dict[str, Any]] = []
    suppressed = 0
    variants = sorted(treated["variant"].dropna().astype(str).unique())
    personas = (
        c.loc[c["persona_id"] != "unassigned", ["persona_id", "persona_name"]]
        .drop_duplicates("persona_id")
        .sort_values("persona_id")
    )
    likely = (
        c.loc[c["likely_persona"].notna(), ["likely_persona", "likely_persona_name"]]
        .astype(str)
        .drop_duplicates("likely_persona")
    )
    likely = likely.sort_values(
        "likely_persona", key=lambda s: s.map(lambda x: (x == "undecided", x))
    )
    for v in variants:
        t_v = treated[treated["variant"] == v]
        groups = [("overall", "All customers", t_v, control, False)]
        for pid, pname in personas.itertuples(index=False):
            groups.append(
                (
                    pid,
                    pname,
                    t_v[t_v["persona_id"] == pid],
                    control[control["persona_id"] == pid],
                    False,
                )
            )
        for lid, lname in likely.itertuples(index=False):
            t = t_v[t_v["likely_persona"].astype(str) == lid]
            k = control[control["likely_persona"].astype(str) == lid]
            groups.append((lid, LIKELY_PREFIX + lname, t, k, True))
        for pid, pname, t, k, is_likely in groups:
            # no contacted, or a control arm with nobody in this group: nothing to compare
            if len(t) == 0 or (has_control and len(k) == 0) or len(t) + len(k) < min_size:
                suppressed += pid != "overall"
                continue
            row = _row(t, k if has_control else None, response, n_boot, seed)
            rows.append(
                {"variant": v, "persona_id": pid, "persona_name": pname, "likely": is_likely, **row}
            )
    return {
        "campaign": name,
        "causal": has_control,
        "contacted": len(treated),
        "control": len(control),
        "likely_contacted": int(treated["likely_persona"].notna().sum()),
        "likely_control": int(control["likely_persona"].notna().sum()),
        "variants": variants,
        "start": str(c["ts"].min()),
        "rows": rows,
        "suppressed_rows": int(suppressed),
    }


def _row(
    t: pd.DataFrame, k: pd.DataFrame | None, response: str, n_boot: int, seed: int
) -> dict[str, Any]:
    out: dict[str, Any] = {"n_treatment": len(t), "n_control": 0 if k is None else len(k)}
    small = len(t) < SMALL_ARM
    for o in OUTCOMES:
        x1 = int(t[o].sum())
        lo1, hi1 = wilson(x1, len(t))
        cell: dict[str, Any] = {"rate_treatment": x1 / len(t), "ci_treatment": [lo1, hi1]}
        small |= o == response and x1 < SMALL_EVENTS
        if k is not None:
            x0 = int(k[o].sum())
            d, lo, hi = newcombe(x1, len(t), x0, len(k))
            cell |= {"rate_control": x0 / len(k), "uplift": d, "low": lo, "high": hi}
            small |= len(k) < SMALL_ARM or (o == response and x0 < SMALL_EVENTS)
        out[o] = cell
    spend: dict[str, Any] = {"mean_treatment": float(t["spend"].mean())}
    if k is not None:
        d, lo, hi = bootstrap_mean_diff(
            t["spend"].to_numpy(), k["spend"].to_numpy(), n_boot=n_boot, seed=seed
        )
        spend |= {"mean_control": float(k["spend"].mean()), "uplift": d, "low": lo, "high": hi}
        out["incremental_conversions_per_1000"] = 1000 * out["conversion"]["uplift"]
        out["incremental_spend_per_1000"] = 1000 * d
        out["verdict"] = verdict(out[response])
    else:
        out["verdict"] = "not causal"
    out["spend"] = spend
    out["small_cell"] = bool(small)
    return out


def verdict(cell: Mapping[str, Any]) -> str:
    """'raised' / 'lowered' when the interval excludes zero, else 'no clear effect'."""
    lo, hi = cell.get("low"), cell.get("high")
    if lo is None or hi is None or not np.isfinite(lo) or not np.isfinite(hi):
        return "no clear effect"
    if lo > 0:
        return "raised"
    if hi < 0:
        return "lowered"
    return "no clear effect"


def measure(
    lake_dir: str | Path,
    assignments: pd.DataFrame | None,
    min_size: int,
    window_days: int = 14,
    response: str = "conversion",
    n_boot: int = 2000,
) -> dict[str, Any] | None:
    """Uplift of every campaign in the lake for the personas of ``assignments``.

    None when the lake has no campaign contacts (nothing to report).
    """
    from personas.campaigns.exposure import contacts
    from personas.lake import Lake

    lake = Lake(lake_dir)
    if "events" not in lake.tables():
        return None
    con = lake.connect()
    try:
        df = contacts(con, window_days)
    finally:
        con.close()
    if df.empty:
        return None
    out = uplift_table(df, assignments, min_size, response, n_boot)
    out["window_days"] = int(window_days)
    return out


def measure_run(
    run_dir: str | Path,
    lake_dir: str | Path,
    window_days: int = 14,
    response: str = "conversion",
    n_boot: int = 2000,
) -> dict[str, Any] | None:
    """Measure the lake's campaigns for a run's personas and write the run's uplift table.

    The tested advice goes into the run's ``profiles.json`` too (each persona's
    ``tested_messages`` and playbook ``actions``, see
    :func:`personas.campaigns.advice.apply_to_profiles`).
    """
    from personas import runs
    from personas.campaigns.advice import apply_to_profiles

    run = runs.load_run(run_dir)
    min_size = int(run.profiles.get("min_persona_size") or 0)
    out = measure(lake_dir, run.assignments, min_size, window_days, response, n_boot)
    runs.write_uplift(run_dir, out)
    runs.write_profiles(run_dir, apply_to_profiles(run.profiles, out))
    return out
