"""Per-customer features as of a date, computed in DuckDB over the lake.

``build_features(lake, as_of, out_dir)`` writes ``features.parquet`` (one row per customer) and
``catalog.json`` (which features exist for this data and what each means). Results are written
by DuckDB's ``COPY`` so that millions of customers never have to fit in Python memory; only the
small BG/NBD inputs (four numbers per customer) pass through numpy.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from personas.diskspace import disk_full, is_disk_full, tree_bytes
from personas.features.catalog import CATALOG, GROUPS, Feature, label, lookup
from personas.features.clv import ClvResult, cohort_from_lake, score_summary, summary_from_lake
from personas.features.kpis import ACTIVITY, FIRST_PURCHASE, KPI_FILES, monthly_activity
from personas.features.result import FeatureSet, catalog_json
from personas.features.sql import (
    DAY_STEPS,
    DAYS,
    Context,
    attribute_features,
    feature_plan,
    probe,
)
from personas.lake import Lake
from personas.lakecheck import require_intact
from personas.sqltext import quote

__all__ = [
    "CATALOG",
    "GROUPS",
    "Feature",
    "FeatureSet",
    "build_features",
    "compute",
    "label",
    "load_features",
    "lookup",
]

log = logging.getLogger(__name__)

CLV = "_personas_clv"  # the CLV scores, joined into the features by name


def compute(
    con: duckdb.DuckDBPyConnection,
    as_of: date | str,
    tables: set[str] | None = None,
    clv: bool = True,
) -> pd.DataFrame:
    """Features for every customer known before ``as_of`` as a DataFrame (small data, notebooks).

    ``con`` must have views ``transactions`` (and optionally ``customers``, ``events``,
    ``feedback``) in the canonical schema, e.g. from :meth:`personas.lake.Lake.connect`.
    """
    as_of = _as_date(as_of)
    ctx = probe(con, as_of, tables if tables is not None else _present(con))
    with _staged(con, ctx, clv) as (sql, _):
        df = con.execute(sql).fetch_df()
    return df.set_index("customer_id")


@contextmanager
def _staged(
    con: duckdb.DuckDBPyConnection,
    ctx: Context,
    clv: bool,
    clv_options: dict[str, Any] | None = None,
    clv_report: dict[str, Any] | None = None,
) -> Iterator[tuple[str, list[str]]]:
    """Run the steps of the feature plan (and the CLV fit); yield the final query, columns.

    The purchase days are dropped once timing, campaign response and the BG/NBD inputs are
    taken from them, before the large aggregations start; the other steps are dropped on exit.
    The BG/NBD and Gamma-Gamma fits are numpy work on one core, so they run in a thread beside
    the next SQL steps (DuckDB releases the GIL) instead of leaving the second core idle; their
    scores reach the final query as an Arrow table, joined in SQL. ``clv_options`` are
    ``holdout`` (share of the history held out to choose the model) and ``clock``; the model
    choice and its diagnostics are put in ``clv_report``.
    """
    opts = {"holdout": 0.25, "clock": "auto"} | (clv_options or {})
    steps, _, _ = feature_plan(ctx)
    names = [name for name, _ in steps]
    days = DAYS in names
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="personas-clv")
    fit: Future | None = None
    extra: list[tuple[str, list[str]]] = []

    def done_with_days() -> None:
        nonlocal days, fit
        if clv:
            summary = summary_from_lake(con, ctx.as_of, days=DAYS)
            cohort = cohort_from_lake(con, ctx.as_of, opts["holdout"], days=DAYS)
            trading = con.execute(f"SELECT DISTINCT d FROM {DAYS}").fetchnumpy()["d"]
            fit = pool.submit(_timed_scores, summary, ctx.as_of, cohort, opts["clock"], trading)
        con.execute(f"DROP TABLE {DAYS}")
        days = False

    try:
        for name, sql in steps:
            if days and name not in DAY_STEPS:
                done_with_days()
            t = time.perf_counter()
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
            log.info("features: step %s in %.1f s", name.removeprefix("_personas_"), _since(t))
        if days:
            done_with_days()
        result = fit.result() if fit is not None else None
        scores = result.scores if result is not None else None
        if result is not None and clv_report is not None:
            clv_report.update(result.report)
        if scores is not None:
            con.register(CLV, scores)
            extra.append((CLV, [c for c in scores.column_names if c != "customer_id"]))
        _, sql, columns = feature_plan(ctx, extra)
        yield sql, columns
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for name in names:
            con.execute(f"DROP TABLE IF EXISTS {name}")
        if extra:
            con.unregister(CLV)


def _timed_scores(
    summary: pa.Table, as_of: date, cohort: Any, clock: str, trading: Any
) -> ClvResult:
    t = time.perf_counter()
    result = score_summary(summary, as_of, cohort=cohort, clock=clock, trading_days=trading)
    log.info("features: CLV models compared, fitted and scored in %.1f s", _since(t))
    return result


def build_features(
    lake: Lake | str | Path,
    as_of: date | str | None,
    out_root: str | Path,
    memory_limit: str | None = None,
    threads: int | None = None,
    clv: bool = True,
    clv_holdout: float = 0.25,
    clv_clock: str = "auto",
    versions: dict[str, int] | None = None,
    engine: str = "duckdb",
    spark_master: str | None = None,
) -> FeatureSet:
    """Compute features as of ``as_of`` (default: the day after the last transaction).

    ``clv_holdout`` is the share of the history (its end) held out to choose the CLV model,
    ``clv_clock`` how time is counted ("auto", "calendar", "trading"); see
    :mod:`personas.features.btyd.selection`. ``versions`` pins the lake's tables to Delta
    versions (a run's ``lake_versions``: the same features again); by default the lake's
    current snapshot, which the catalog records. ``engine="spark"`` runs the same SQL on Spark
    (:mod:`personas.features.spark`) at ``spark_master``.
    """
    if engine == "spark":
        from personas.features.spark import build_features_spark

        return build_features_spark(
            lake,
            as_of,
            out_root,
            clv=clv,
            clv_holdout=clv_holdout,
            clv_clock=clv_clock,
            versions=versions,
            master=spark_master,
        )
    if engine != "duckdb":
        from personas.errors import ConfigError

        raise ConfigError(f"features engine {engine!r}: expected 'duckdb' or 'spark'")
    t0 = time.perf_counter()
    lake = lake if isinstance(lake, Lake) else Lake(lake)
    require_intact(lake)  # a damaged file: one line with the recovery, not DuckDB's traceback
    versions = lake.snapshot() if versions is None else dict(versions)
    con = lake.connect(memory_limit=memory_limit, threads=threads, versions=versions)
    tables = set(lake.tables(versions))
    if "transactions" not in tables and not ("customers" in tables and attribute_features(con)):
        from personas.errors import NotEnoughDataError

        raise NotEnoughDataError(
            f"the lake {lake.root} has no transactions and its customers carry no "
            "customer-level features; ingest order lines, or map customer-level measures "
            "onto feature names in the mapping's attributes: (e.g. `- recency_days: "
            "<sql>`, see docs/features.md)"
        )
    as_of = _as_date(as_of) if as_of else default_as_of(con)
    t = time.perf_counter()
    ctx = probe(con, as_of, tables)
    log.info("features: probed the lake in %.1f s", _since(t))
    if "transactions" not in tables:
        log.info(
            "features: no transactions; customer-level features from the customers table: %s",
            ", ".join(ctx.attribute_features),
        )
    out_dir = Path(out_root) / f"as_of={as_of.isoformat()}"
    tmp = out_dir / ".features.tmp.parquet"
    final = out_dir / "features.parquet"
    catalog_path = out_dir / "catalog.json"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        clv_report: dict[str, Any] = {}
        options = {"holdout": clv_holdout, "clock": clv_clock}
        with _staged(con, ctx, clv, options, clv_report) as (sql, columns):
            t = time.perf_counter()
            con.execute(f"COPY ({sql}) TO '{quote(tmp)}' (FORMAT parquet, COMPRESSION zstd)")
            log.info("features: joined, value indices and written in %.1f s", _since(t))
        n = con.execute(
            f"SELECT count(*) FROM read_parquet('{quote(tmp)}', hive_partitioning = false)"
        ).fetchone()[0]
        cat = catalog_json(ctx, columns, n, lake, versions) | {"engine": "duckdb"}
        if clv:
            cat["clv"] = clv_report
        cat_tmp = out_dir / ".catalog.tmp.json"
        cat_tmp.write_text(json.dumps(cat, indent=1), encoding="utf-8")
        kpi_tmp = {}
        if "transactions" in tables:  # monthly activity for the retention/acquisition KPIs
            for name, df in zip(
                (ACTIVITY, FIRST_PURCHASE), monthly_activity(con, as_of), strict=True
            ):
                kpi_tmp[name] = out_dir / f".{name}.tmp"
                df.to_parquet(kpi_tmp[name], index=False)
        tmp.replace(final)  # the renames cannot run out of space
        cat_tmp.replace(catalog_path)
        for name, path in kpi_tmp.items():
            path.replace(out_dir / name)
    except BaseException as e:
        con.close()
        written = tree_bytes([tmp])
        for p in (tmp, out_dir / ".catalog.tmp.json", *(out_dir / f".{n}.tmp" for n in KPI_FILES)):
            p.unlink(missing_ok=True)
        if is_disk_full(e):  # DuckDB's spill and the file: about the lake's size
            lake_bytes = tree_bytes(f for tb in tables for f in lake.files(tb))
            raise disk_full(out_root, max(written * 2, lake_bytes)) from None
        raise
    con.close()
    return FeatureSet(final, catalog_path, as_of, columns, n, time.perf_counter() - t0)


def load_features(path: str | Path) -> pd.DataFrame:
    """Read a features.parquet (or its folder) into a DataFrame indexed by customer_id."""
    import pyarrow.parquet as pq

    p = Path(path)
    if p.is_dir():
        p = p / "features.parquet"
    # read the file alone: pyarrow would otherwise turn the folder name as_of=... into a column
    return pq.ParquetFile(p).read().to_pandas().set_index("customer_id")


def load_activity(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The monthly activity and first purchases beside a features.parquet, or None."""
    p = Path(path)
    d = p.parent if p.is_file() else p
    if not (d / ACTIVITY).exists() or not (d / FIRST_PURCHASE).exists():
        return None
    return pd.read_parquet(d / ACTIVITY), pd.read_parquet(d / FIRST_PURCHASE)


def load_catalog(path: str | Path) -> dict:
    """The ``catalog.json`` beside a features.parquet (or in its folder); {} if there is none."""
    p = Path(path)
    p = p.parent / "catalog.json" if p.is_file() else p / "catalog.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}


def latest_features(features_root: str | Path, lake_fingerprint: str | None) -> tuple[Path, str]:
    """The features file a discovery should use, and why, in words for the log.

    The newest *computed* features of the lake as it is now (``catalog.json`` names the lake
    fingerprint): not the largest as-of date, which may be a trial far in the future. When no
    features match the lake (it changed since), the newest computed ones, saying so.
    """
    from personas.errors import NotEnoughDataError

    found = sorted(
        Path(features_root).glob("as_of=*/features.parquet"), key=lambda p: p.stat().st_mtime
    )
    if not found:
        raise NotEnoughDataError(
            f"no features under {features_root}; run `personas features` first"
        )
    current = [p for p in found if load_catalog(p).get("lake_fingerprint") == lake_fingerprint]
    if current:
        p = current[-1]
        return p, f"the newest features computed for the current lake ({p.parent.name})"
    p = found[-1]
    return p, (
        f"the newest features computed ({p.parent.name}); none match the lake as it is now, "
        "run `personas features` to include the latest ingest"
    )


def default_as_of(con: duckdb.DuckDBPyConnection) -> date:
    """The day after the last transaction: everything ingested counts.

    A lake without transactions (a customer-level extract) is a snapshot taken before its
    campaigns: the day of the first campaign contact, so no campaign outcome feeds the
    personas whose response is then measured; without contacts, the day after the last event.
    """
    last = con.execute("SELECT max(ts) FROM transactions").fetchone()[0]
    if last is not None:
        return (pd.Timestamp(last).tz_convert("UTC").normalize() + pd.Timedelta(days=1)).date()
    first_contact, last_event = con.execute(
        "SELECT min(ts) FILTER (WHERE event_type = 'campaign_contact'), max(ts) FROM events"
    ).fetchone()
    if first_contact is not None:
        return pd.Timestamp(first_contact).tz_convert("UTC").normalize().date()
    if last_event is not None:
        return (
            pd.Timestamp(last_event).tz_convert("UTC").normalize() + pd.Timedelta(days=1)
        ).date()
    from personas.errors import NotEnoughDataError

    raise NotEnoughDataError("no transactions or events in the lake to date the features by")


def _present(con: duckdb.DuckDBPyConnection) -> set[str]:
    out = set()
    for t in ("transactions", "customers", "events", "feedback"):
        try:
            if con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {t} LIMIT 1)").fetchone()[0]:
                out.add(t)
        except duckdb.CatalogException:
            pass
    return out


def _as_date(d: date | str | datetime) -> date:
    if isinstance(d, datetime):
        return d.date()
    if isinstance(d, date):
        return d
    return date.fromisoformat(str(d))


def _since(t: float) -> float:
    return time.perf_counter() - t
