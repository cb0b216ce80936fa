"""Assignment at scale: the persona model scores every customer on Spark's executors.

The fitted model (loaded from the run on the driver; fitting keeps using a sample collected
to the driver, :mod:`personas.discover`) travels to the executors with the function that
``mapInPandas`` runs on each batch of rows, which calls the very code of
:func:`personas.assign.assign_frame` (:func:`personas.assign.assign_with`), so a customer gets
the same persona, and likely persona, on either engine. The
per-persona aggregates for profiles and KPIs (size, mean confidence, mean of the numeric
features) are computed in Spark. PySpark is the optional extra ``personas[spark]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from personas.assign import LIFETIME_COLUMNS, AssignResult, assign_with, run_models
from personas.errors import PersonasError
from personas.threads import limited_threads

#: The columns (and Spark types) of an assignment.
ASSIGNMENT_SCHEMA = (
    "customer_id string, persona_id string, persona_name string, confidence double, "
    "profiled boolean"
)
#: ... and those a run with a likely-persona model adds.
LIKELY_SCHEMA = ", likely_persona string, likely_persona_name string, likely_probability double"


def assign_spark(features: Any, run_dir: str | Path) -> Any:
    """Persona id, name, confidence and ``profiled`` of every customer (and the likely persona
    where the run has that model), as a Spark DataFrame.

    ``features`` is a Spark DataFrame of a features table (``customer_id`` and the model's
    feature columns), e.g. ``spark.read.parquet(".../features.parquet")``. The models are
    loaded once here and shipped with the function; each batch runs
    :func:`personas.assign.assign_with`, the local code.
    """
    seg, likely, by_index = run_models(run_dir)
    missing = [c for c in seg.features_ if c not in features.columns]
    if missing:
        raise PersonasError(
            f"the input lacks feature column(s) {', '.join(missing)} that the model uses; "
            "compute them with `personas features` over a lake with the same tables"
        )
    columns = _as_floats(features)
    schema = ASSIGNMENT_SCHEMA + (LIKELY_SCHEMA if likely is not None else "")
    # p_alive and days to the next purchase ride along where the features have them, as locally
    schema += "".join(f", {c} double" for c in LIFETIME_COLUMNS if c in features.columns)
    names = [c.split()[0] for c in schema.split(", ")]

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for X in batches:
            if X.empty:
                continue
            out = assign_with(seg, likely, by_index, X.set_index("customer_id")).reset_index()
            out["customer_id"] = out["customer_id"].astype(str)
            out["persona_id"] = out["persona_id"].astype(str)
            yield out[names]

    return features.select(*columns).mapInPandas(score, schema)


def _as_floats(features: Any) -> list[Any]:
    """Columns of ``features`` with decimals as doubles: DuckDB writes a 1.0/0.0 CASE as
    DECIMAL; the models want floats, as pandas gives them."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DecimalType

    return [
        F.col(f.name).cast("double").alias(f.name)
        if isinstance(f.dataType, DecimalType)
        else F.col(f.name)
        for f in features.schema.fields
    ]


def score_spark(features_path: str | Path, seg: Any, master: str | None = None) -> pd.DataFrame:
    """``seg.assign`` of every customer of a features table, on Spark's executors: a frame of
    ``label`` (the model's persona index, negative for the not-profiled groups) and
    ``confidence`` indexed by customer_id, collected to the driver (two numbers a customer).

    What a refresh with ``features.engine: spark`` scores with (:func:`personas.refresh.
    refresh_run`): the published model's placement of today's customers, for drift and for an
    assign run.
    """
    from personas.features.spark import spark_session

    spark = spark_session(master)
    # every column: besides the model's features, seg.assign reads frequency and lifecycle
    features = spark.read.parquet(str(features_path))

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for X in batches:
            if X.empty:
                continue
            with limited_threads():  # as assign_with: one model thread unless asked
                labels, conf = seg.assign(X.set_index("customer_id"))
            yield pd.DataFrame(
                {"customer_id": X["customer_id"].astype(str), "label": labels, "confidence": conf}
            )

    schema = "customer_id string, label long, confidence double"
    got = features.select(*_as_floats(features)).mapInPandas(score, schema).toArrow().to_pandas()
    return got.set_index("customer_id")


def assign_file_spark(
    path: str | Path, run_dir: str | Path, out: str | Path | None = None, master: str | None = None
) -> AssignResult:
    """``personas assign --engine spark``: read a features table with Spark, assign on the
    executors, write the assignments as a Parquet folder (Spark's parts) beside it."""
    from personas.features.spark import spark_session

    path = Path(path)
    if path.suffix not in (".parquet", ".pq") and not path.is_dir():
        raise PersonasError(f"{path.name}: the Spark engine reads a .parquet features table")
    spark = spark_session(master)
    res = assign_spark(spark.read.parquet(str(path)), run_dir).cache()
    out = Path(out) if out else path.with_name(path.stem + ".personas.parquet")
    res.write.mode("overwrite").parquet(str(out))
    tally = {
        f"{r['persona_id']} {r['persona_name']}": int(r["count"])
        for r in res.groupBy("persona_id", "persona_name").count().orderBy("persona_id").collect()
    }
    if "likely_persona" in res.columns:
        likely = res.where("likely_persona IS NOT NULL").groupBy("likely_persona").count()
        for r in likely.orderBy("likely_persona").collect():
            tally[f"likely {r['likely_persona']}"] = int(r["count"])
    res.unpersist()
    return AssignResult(out, tally)


def persona_aggregates(features: Any, assignments: Any) -> Any:
    """Per persona: customers, mean confidence and the mean of every numeric feature (Spark)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import NumericType

    numeric = [
        f.name
        for f in features.schema.fields
        if isinstance(f.dataType, NumericType) and f.name != "customer_id"
    ]
    # an assignment may carry feature columns (p_alive, ...): take only who went where
    who = assignments.select("customer_id", "persona_id", "persona_name", "confidence")
    joined = who.join(features, "customer_id")
    return (
        joined.groupBy("persona_id", "persona_name")
        .agg(
            F.count("*").alias("customers"),
            F.avg("confidence").alias("mean_confidence"),
            *[F.avg(c).alias(f"mean_{c}") for c in numeric],
        )
        .orderBy("persona_id")
    )
