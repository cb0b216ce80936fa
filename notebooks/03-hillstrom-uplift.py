# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Which e-mail works for whom? Hillstrom's randomised test, per persona
#
# Kevin Hillstrom's MineThatData test (2008): 64,000 customers randomised into a men's e-mail,
# a women's e-mail and no e-mail (the control). The file has no order lines, only each
# customer's history, so the personas come from those customer-level attributes; then every
# e-mail's uplift is measured within each persona with the `personas.campaigns` API. Set
# `PERSONAS_SHARED_DATA` to the folder holding `hillstrom-email/`.

# %%
import os
import tempfile
from pathlib import Path

import pandas as pd

from personas.campaigns import advice
from personas.campaigns.exposure import contacts
from personas.campaigns.uplift import uplift_table
from personas.features.build import build_features, load_catalog, load_features
from personas.ingest.batch import ingest
from personas.lake import Lake
from personas.segment.segmenter import PersonaSegmenter

DATA = Path(os.environ.get("PERSONAS_SHARED_DATA", "../../shared/data"))
csv = DATA / "hillstrom-email" / "hillstrom.csv.gz"
work = Path(tempfile.mkdtemp(prefix="hillstrom-"))
report = ingest([csv], "hillstrom", work / "lake")
print(report.summary())

# %% [markdown]
# ## The exposure: every customer has an arm
#
# The shipped `hillstrom` mapping writes a `campaign_contact` event for every customer, the
# control included (`arm: control`), with the e-mail as the `variant`. Outcomes (a visit, a
# conversion, spend) are read from the lake within 14 days of the contact.

# %%
con = Lake(work / "lake").connect()
exposure = contacts(con, window_days=14)
print(exposure.groupby(["arm", "variant"], dropna=False)[["visit", "conversion", "spend"]].mean())

# %% [markdown]
# An independent check with plain pandas on the CSV: the published visit rates are 18.28%
# (men's e-mail), 15.14% (women's) and 10.62% (no e-mail).

# %%
raw = pd.read_csv(csv)
check = raw.groupby("segment")["visit"].mean().mul(100).round(2)
print(check.to_string())
ours = exposure.groupby(exposure["variant"].fillna("No E-Mail"))["visit"].mean().mul(100).round(2)
assert (check.sort_index() == ours.sort_index()).all()
print("visit rates equal the CSV's")

# %% [markdown]
# ## Personas from customer-level attributes
#
# The mapping stores months since the last purchase (as days), past-year spend, the share of
# men's / women's lines and of web / phone purchases under feature names; with no order lines,
# those become the features. The as-of date defaults to the campaign day, so no outcome of the
# campaign feeds the personas.

# %%
fs = build_features(work / "lake", None, work / "features")
X = load_features(fs.path)
print(fs.as_of, load_catalog(fs.path)["basis"])
seg = PersonaSegmenter(k_range=(3, 8), algorithms=("kmeans",), sample_size=5000, n_bootstrap=2)
seg.fit(X)
labels = pd.Series(seg.labels_, index=X.index)
means = X[seg.features_].groupby(labels.to_numpy()).mean().round(2)
means.index = [f"P{i + 1}" for i in means.index]
means["customers"] = labels.value_counts().sort_index().to_numpy()
print(f"{seg.k_} personas, stability {seg.stability_:.2f}")
print(means.to_string())

# %% [markdown]
# ## Uplift per e-mail and persona
#
# Visit-rate uplift with Newcombe's hybrid score interval (the difference of the two arms'
# Wilson intervals); spend uplift per contact with a bootstrap interval. Rows of fewer customers
# than the minimum persona size are left out; thin arms are flagged.

# %%
assign = pd.DataFrame(
    {
        "customer_id": X.index,
        "persona_id": [f"P{k + 1}" for k in seg.labels_],
        "persona_name": [f"P{k + 1}" for k in seg.labels_],
    }
)
u = uplift_table(exposure, assign, min_size=seg.min_persona_size_, response="visit")
camp = u["campaigns"][0]
table = pd.DataFrame(
    [
        {
            "persona": r["persona_id"],
            "e-mail": r["variant"],
            "n e-mail": r["n_treatment"],
            "n control": r["n_control"],
            "visit e-mail %": round(100 * r["visit"]["rate_treatment"], 2),
            "visit control %": round(100 * r["visit"]["rate_control"], 2),
            "uplift pp": round(100 * r["visit"]["uplift"], 2),
            "95% CI": advice.interval(r["visit"]),
            "spend uplift /1000": round(r["incremental_spend_per_1000"]),
            "verdict": r["verdict"],
        }
        for r in camp["rows"]
    ]
)
print(table.to_string(index=False))

# %% [markdown]
# ## What the playbook says
#
# A message is recommended for a persona only where its interval excludes zero; a message that
# lowered the response gets a warning.

# %%
for pid in sorted(assign["persona_id"].unique()):
    for t in advice.tested_actions(u, pid):
        print(f"{pid}: {t['action']} -- {t['why']}")
