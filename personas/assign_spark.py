"""Assignment at scale: the persona model scores every customer on Spark's executors.

The fitted model (loaded from the run on the driver; fitting keeps using a sample collected
to the driver, :mod:`personas.discover`) travels to the executors with the function that
``mapInPandas`` runs on each batch of rows, which calls the very code of
:func:`personas.assign.assign_frame`, so a customer gets the same persona on either engine. The
per-persona aggregates for profiles and KPIs (size, mean confidence, mean of the numeric
features) are computed in Spark. PySpark is the optional extra ``personas[spark]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from personas import runs
from personas.errors import PersonasError
from personas.segment.segmenter import NOT_PROFILED

#: The columns (and Spark types) of an assignment.
ASSIGNMENT_SCHEMA = (
    "customer_id string, persona_id string, persona_name string, confidence double, "
    "profiled boolean"
)


def assign_spark(features: Any, run_dir: str | Path) -> Any:
    """Persona id, name, confidence and ``profiled`` of every customer, as a Spark DataFrame.

    ``features`` is a Spark DataFrame of a features table (``customer_id`` and the model's
    feature columns), e.g. ``spark.read.parquet(".../features.parquet")``.
    """
    run = runs.load_run(run_dir)
    seg = run.model()
    by_index = {p["index"]: (str(p["id"]), p["name"]) for p in run.profiles["personas"]}
    labels = {**{k: (str(v[0]), v[1]) for k, v in NOT_PROFILED.items()}, **by_index}
    missing = [c for c in seg.features_ if c not in features.columns]
    if missing:
        raise PersonasError(
            f"the input lacks feature column(s) {', '.join(missing)} that the model uses; "
            "compute them with `personas features` over a lake with the same tables"
        )
    from pyspark.sql import functions as F
    from pyspark.sql.types import DecimalType

    # DuckDB writes a 1.0/0.0 CASE as DECIMAL; the model wants floats, as pandas gives it
    types = {f.name: f.dataType for f in features.schema.fields}
    columns = [F.col("customer_id")] + [
        F.col(c).cast("double").alias(c) if isinstance(types[c], DecimalType) else F.col(c)
        for c in seg.features_
    ]

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for X in batches:
            if X.empty:
                continue
            X = X.set_index("customer_id")
            lab, conf = seg.assign(X)
            names = [labels[int(v)] for v in lab]
            yield pd.DataFrame(
                {
                    "customer_id": X.index.astype(str),
                    "persona_id": [n[0] for n in names],
                    "persona_name": [n[1] for n in names],
                    "confidence": conf.astype(float),
                    "profiled": lab >= 0,
                }
            )

    return features.select(*columns).mapInPandas(score, ASSIGNMENT_SCHEMA)


def persona_aggregates(features: Any, assignments: Any) -> Any:
    """Per persona: customers, mean confidence and the mean of every numeric feature (Spark)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import NumericType

    numeric = [
        f.name
        for f in features.schema.fields
        if isinstance(f.dataType, NumericType) and f.name != "customer_id"
    ]
    joined = assignments.join(features, "customer_id")
    return (
        joined.groupBy("persona_id", "persona_name")
        .agg(
            F.count("*").alias("customers"),
            F.avg("confidence").alias("mean_confidence"),
            *[F.avg(c).alias(f"mean_{c}") for c in numeric],
        )
        .orderBy("persona_id")
    )
