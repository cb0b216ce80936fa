"""Features on Spark: the same SQL as DuckDB's (transpiled), over the same lake snapshot.

For data beyond one machine. Spark reads each table's snapshot as its Parquet file list, taken
from the Delta log by delta-rs (no Delta connector needed; on a cluster that has it, Spark
could read the tables directly), runs the feature SQL transpiled to Spark's dialect
(:func:`personas.features.portable.transpile`; the steps of
:func:`personas.features.sql.feature_plan` as cached views, then its final query, which is
:func:`personas.features.portable.feature_sql` with the steps inlined), and writes the same
``features.parquet`` + ``catalog.json`` DuckDB writes.

What runs where: the SQL (every per-customer aggregation, the BTYD summary, the holdout
cohort's counts) on the executors; the BG/NBD and Gamma-Gamma fits on the driver, over the
summary collected as Arrow (seven numbers per customer; the fit itself evaluates each distinct
(frequency, recency, T) once), their scores joined back in Spark. The features table, one row
per customer, is collected to the driver and written as one file; so are the KPIs' monthly
activity and first purchases (``activity.parquet``, ``first_purchase.parquet``), counted in
Spark by the DuckDB engine's SQL (:func:`personas.features.kpis.monthly_activity`).

PySpark is the optional extra ``personas[spark]``; it needs Java 17. No Spark session starts
unless this module is asked for one.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

from personas.features.clv import cohort_from_lake, score_summary, summary_from_lake
from personas.features.kpis import KPI_FILES, monthly_activity
from personas.features.portable import transpile
from personas.features.result import FeatureSet, catalog_json
from personas.features.sql import DAYS, feature_plan, feature_query, probe
from personas.lake import ALL_TABLES, PARTITION_BY, Lake, table_schema

log = logging.getLogger(__name__)

CLV = "_personas_clv"
#: Spark settings of the sessions this module starts (an active session is used as it is):
#: the first three are what the feature SQL's results depend on, set under spark-submit too.
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    # DuckDB's semantics: x / 0 is NULL, not an error (Spark 4 turns ANSI mode on by default)
    "spark.sql.ansi.enabled": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # small-machine settings, left to spark-submit's confs on a cluster
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
}
SEMANTIC_CONF = (
    "spark.sql.session.timeZone",
    "spark.sql.ansi.enabled",
    "spark.sql.execution.arrow.pyspark.enabled",
)


def spark_session(master: str | None = None, app: str = "personas") -> Any:
    """The active Spark session, or a new one at ``master`` (default ``local[2]``).

    Under ``spark-submit`` (which starts this interpreter with ``PYSPARK_GATEWAY_PORT`` set)
    the new session takes spark-submit's ``--master`` and confs, whatever ``master`` says,
    except the settings the results depend on (:data:`SEMANTIC_CONF`)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover - depends on the install
        from personas.errors import ConfigError

        raise ConfigError(
            "the Spark engine needs PySpark: install the extra (uv sync --extra spark, or "
            "pip install 'personas[spark]') and Java 17"
        ) from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ  # under spark-submit: its --master rules
    builder = SparkSession.builder.appName(app)
    master = "" if submitted else master or "local[2]"
    if not submitted:
        builder = builder.master(master)
    for k, v in SESSION_CONF.items():
        if k in SEMANTIC_CONF or not submitted:
            builder = builder.config(k, v)
    if master.startswith("local") or "127.0.0.1" in master:
        # Python workers on this machine run this interpreter (its environment has the model's
        # packages); on a cluster, spark.pyspark.python is the cluster's to set
        builder = builder.config("spark.pyspark.python", sys.executable)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # what pyspark itself reads
    return builder.getOrCreate()


def register_lake(spark: Any, lake: Lake, versions: dict[str, int]) -> None:
    """A temporary view per table at ``versions``: the snapshot's Parquet files."""
    from pyspark.sql.pandas.types import from_arrow_schema

    for table in ALL_TABLES:
        files = lake.files(table, version=versions[table]) if table in versions else []
        if files:
            df = spark.read.parquet(*[str(f) for f in files])
            df = df.drop(*[c for c in PARTITION_BY if c in df.columns])
        else:
            arrow = table_schema(table)
            arrow = pa.schema([f for f in arrow if f.name not in PARTITION_BY])
            df = spark.createDataFrame([], schema=from_arrow_schema(arrow))
        df.createOrReplaceTempView(table)


class SparkSQL:
    """DuckDB-dialect SQL run on Spark, with the few DuckDB cursor methods the feature code
    uses (``execute``/``sql``, ``fetchone``, ``fetchall``, ``fetchnumpy``, ``to_arrow_table``),
    so :func:`personas.features.sql.probe`, the CLV summary and the KPIs' monthly activity
    (:func:`personas.features.kpis.monthly_activity`) run unchanged."""

    def __init__(self, spark: Any):
        self.spark = spark
        self._df: Any = None

    def execute(self, sql: str) -> SparkSQL:
        self._df = self.spark.sql(transpile(sql, "spark"))
        return self

    sql = execute

    def fetchone(self) -> tuple | None:
        rows = self._df.take(1)
        return tuple(rows[0]) if rows else None

    def fetchall(self) -> list[tuple]:
        return [tuple(r) for r in self._df.collect()]

    def to_arrow_table(self) -> pa.Table:
        return self._df.toArrow()

    def df(self) -> Any:
        return self.to_arrow_table().to_pandas()

    def fetchnumpy(self) -> dict[str, np.ndarray]:
        t = self.to_arrow_table()
        return {c: t[c].to_numpy(zero_copy_only=False) for c in t.column_names}


def build_features_spark(
    lake: Lake | str | Path,
    as_of: date | str | None,
    out_root: str | Path,
    *,
    clv: bool = True,
    clv_holdout: float = 0.25,
    clv_clock: str = "auto",
    versions: dict[str, int] | None = None,
    master: str | None = None,
    spark: Any = None,
) -> Any:
    """:func:`personas.features.build.build_features` on Spark (see the module)."""
    t0 = time.perf_counter()
    lake = lake if isinstance(lake, Lake) else Lake(lake)
    versions = lake.snapshot() if versions is None else dict(versions)
    tables = set(lake.tables(versions))
    if "transactions" not in tables:
        from personas.errors import NotEnoughDataError

        raise NotEnoughDataError(
            f"the lake {lake.root} has no transactions; ingest some first "
            "(personas ingest <files> --mapping <yaml>)"
        )
    spark = spark or spark_session(master)
    register_lake(spark, lake, versions)
    con = SparkSQL(spark)
    if isinstance(as_of, str):
        as_of = date.fromisoformat(as_of)
    as_of = as_of or _default_as_of(con)
    ctx = probe(con, as_of, tables)  # type: ignore[arg-type]
    report: dict[str, Any] = {}
    extra: list[tuple[str, list[str]]] = []
    steps, _, _ = feature_plan(ctx)
    # the plan's steps as cached views: Spark would otherwise compute a CTE again wherever the
    # query names it (the purchase days feed four steps, the joined table every value index)
    t = time.perf_counter()
    cached = []
    for name, body in steps:
        df = spark.sql(transpile(body, "spark")).cache()
        df.createOrReplaceTempView(name)
        cached.append(df)
    if clv:
        summary = summary_from_lake(con, as_of, days=DAYS)  # type: ignore[arg-type]
        cohort = cohort_from_lake(con, as_of, clv_holdout, days=DAYS)  # type: ignore[arg-type]
        trading = con.execute(f"SELECT DISTINCT d FROM {DAYS}").fetchnumpy()["d"]
        result = score_summary(summary, as_of, cohort=cohort, clock=clv_clock, trading_days=trading)
        report = result.report
        if result.scores is not None:
            spark.createDataFrame(result.scores).createOrReplaceTempView(CLV)
            extra.append((CLV, [c for c in result.scores.column_names if c != "customer_id"]))
        log.info("features (spark): CLV summary, fit and scores in %.1f s", time.perf_counter() - t)
    t = time.perf_counter()
    _, final, _ = feature_plan(ctx, extra)
    joined, rest = split_cte(final, "joined")
    df = spark.sql(transpile(joined, "spark")).cache()  # read by every value index
    df.createOrReplaceTempView("joined")
    cached.append(df)
    table = spark.sql(transpile(rest, "spark")).toArrow()
    for df in cached:
        df.unpersist()
    log.info("features (spark): the feature query in %.1f s", time.perf_counter() - t)
    _, columns = feature_query(ctx, extra)
    out_dir = Path(out_root) / f"as_of={as_of.isoformat()}"
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp, final = out_dir / ".features.tmp.parquet", out_dir / "features.parquet"
    pq.write_table(table, tmp, compression="zstd")
    kpi_tmp = {}
    if "transactions" in tables:  # the KPIs' monthly activity, as the DuckDB engine writes it
        t = time.perf_counter()
        frames = monthly_activity(con, as_of)  # type: ignore[arg-type]
        for name, frame in zip(KPI_FILES, frames, strict=True):
            kpi_tmp[name] = out_dir / f".{name}.tmp"
            frame.to_parquet(kpi_tmp[name], index=False)
        log.info("features (spark): monthly activity in %.1f s", time.perf_counter() - t)
    tmp.replace(final)
    for name, path in kpi_tmp.items():
        path.replace(out_dir / name)
    cat = catalog_json(ctx, columns, table.num_rows, lake, versions)
    cat |= {"engine": "spark", "spark_master": spark.sparkContext.master}
    if clv:
        cat["clv"] = report
    catalog_path = out_dir / "catalog.json"
    catalog_path.write_text(json.dumps(cat, indent=1, default=str), encoding="utf-8")
    return FeatureSet(final, catalog_path, as_of, columns, table.num_rows, time.perf_counter() - t0)


def _default_as_of(con: SparkSQL) -> date:
    """The day after the last transaction (UTC), as ``build.default_as_of``."""
    row = con.spark.sql("SELECT date_add(to_date(max(ts)), 1) FROM transactions").take(1)
    if not row or row[0][0] is None:
        from personas.errors import NotEnoughDataError

        raise NotEnoughDataError("no transactions in the lake")
    return row[0][0]


def split_cte(sql: str, name: str) -> tuple[str, str]:
    """``WITH a, b, name, c SELECT ...`` -> (``WITH a, b, name SELECT * FROM name``,
    ``WITH c SELECT ...``): the CTE ``name`` as a query of its own, and the rest reading it."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    ctes = tree.args["with_"].expressions
    i = [c.alias for c in ctes].index(name)
    head = sqlglot.parse_one(f"SELECT * FROM {name}", read="duckdb")
    head.set("with_", exp.With(expressions=[c.copy() for c in ctes[: i + 1]]))
    rest = tree.copy()
    if ctes[i + 1 :]:
        rest.set("with_", exp.With(expressions=[c.copy() for c in ctes[i + 1 :]]))
    else:
        rest.set("with_", None)
    return head.sql(dialect="duckdb"), rest.sql(dialect="duckdb")
