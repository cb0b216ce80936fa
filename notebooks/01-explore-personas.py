# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Explore the lake and the published personas
#
# This notebook reads what the pipeline produced through the `personas` library API: the lake
# (with its row accounting), the features of the published run, and the personas with the
# evidence behind them. Run `make demo` (or `personas refresh`) first; set `PERSONAS_WORKSPACE`
# to explore another workspace.

# %%
import os
from pathlib import Path

import pandas as pd
import plotly.express as px
from sklearn.metrics import adjusted_rand_score

import personas

WORKSPACE = Path(os.environ.get("PERSONAS_WORKSPACE", "../data"))
pd.set_option("display.width", 160)

# %% [markdown]
# ## The lake
# Every ingest is one atomic batch with its row accounting:
# input = accepted + quarantined + duplicates.

# %%
lake = personas.Lake(WORKSPACE / "lake")
accounting = pd.DataFrame(
    [
        {"batch": b.batch_id, "source": s.source, "table": s.table, "rows_in": s.rows_in,
         "accepted": s.accepted, "quarantined": s.quarantined, "duplicates": s.duplicates}
        for b in lake.batches() for s in b.sources
    ]
)
assert (accounting.rows_in == accounting.accepted + accounting.quarantined
        + accounting.duplicates).all()
accounting

# %%
con = lake.connect()
con.sql("""
    SELECT date_trunc('month', ts) AS month, count(DISTINCT customer_id) AS customers,
           round(sum(amount)) AS net_sales
    FROM transactions GROUP BY 1 ORDER BY 1
""").df().tail(12)

# %%
con.sql("SELECT rule, count(*) AS rows FROM quarantine GROUP BY 1 ORDER BY 2 DESC").df()

# %% [markdown]
# ## The published run

# %%
run = personas.latest_run(WORKSPACE)
print(run.path)
run.personas

# %% [markdown]
# How the number of personas was chosen: every candidate algorithm and k with its internal
# indices and bootstrap stability (mean ARI over resamples).

# %%
model = run.profiles["model"]
print(model["selection_rule"])
pd.DataFrame(model["candidates"]).round(3)

# %% [markdown]
# What sets each persona apart (standardised difference versus the other personas), and the
# recommended actions with the trait that triggered them.

# %%
for p in run.profiles["personas"]:
    print(f"{p['id']} {p['name']} ({p['share']:.0%})")
    for t in p["traits"][:3]:
        print("   ", t["text"])
    for a in p["actions"]:
        print("    ->", a["title"], "because", a["because"])

# %% [markdown]
# ## The features behind it

# %%
X = personas.load_features(run.info["features"])
X.describe().T.head(20)

# %%
prof = run.assignments.set_index("customer_id")[["persona_id", "persona_name", "confidence"]]
X.join(prof).groupby("persona_name")[["frequency", "monetary", "recency_days"]].median()

# %% [markdown]
# ## The persona map (UMAP of a sample)

# %%
m = run.map.merge(run.assignments[["customer_id", "persona_name"]], on="customer_id")
px.scatter(m, x="x", y="y", color="persona_name", opacity=0.6, render_mode="webgl",
           title=f"{len(m):,} sampled customers")

# %% [markdown]
# ## Try another number of personas
# The library estimator follows scikit-learn conventions; compare a fixed k with the published
# model by the adjusted Rand index on the profiled customers.

# %%
seg = personas.PersonaSegmenter(k=3, algorithms=("kmeans",), n_bootstrap=0, random_state=0)
seg.fit(X)
published = prof.loc[X.index, "persona_id"]
mask = seg.labels_ >= 0
print("ARI (k=3 vs published):", round(adjusted_rand_score(published[mask],
                                                          seg.labels_[mask]), 3))
