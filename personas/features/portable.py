"""The feature SQL on other engines: one definition, transpiled with sqlglot.

The query is written in a dialect-neutral subset of DuckDB SQL; ``feature_sql(ctx, "spark")``
returns the same query for Spark SQL (or BigQuery, Snowflake, PostgreSQL, ...). Transpiling is
strict: a construct the target cannot express raises instead of producing a wrong query.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from personas.features.sql import Context, feature_query


def feature_sql(
    ctx: Context, dialect: str = "duckdb", extra: list[tuple[str, list[str]]] | None = None
) -> str:
    """The feature query for ``dialect`` (any sqlglot dialect name).

    ``extra`` adds relations with more per-customer columns (the CLV scores), as in
    :func:`personas.features.sql.feature_plan`.
    """
    sql, _ = feature_query(ctx, extra)
    return transpile(sql, dialect)


def transpile(sql: str, dialect: str) -> str:
    """``sql`` (DuckDB's dialect) in ``dialect``; strict.

    For Spark, decimal literals (``1.0``) become doubles: DuckDB reads them as doubles in
    arithmetic with doubles, Spark as DECIMAL, whose fixed scale would round ratios such as
    ``count(*) * 1.0 / n`` to a few digits. DuckDB's ``timezone('UTC', ts)`` (a timestamp's
    UTC wall clock, e.g. for its calendar month) becomes ``to_utc_timestamp(ts,
    current_timezone())``: Spark shows a timestamp in the session's zone, whatever it is.
    """
    if dialect == "duckdb":
        return sql
    tree = sqlglot.parse_one(sql, read="duckdb")
    if dialect == "spark":
        tree = tree.transform(_double_literal).transform(_spark_utc)
    return tree.sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE, pretty=True)


def _spark_utc(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Anonymous) and node.name.lower() == "timezone":
        zone, ts = node.expressions
        if not (isinstance(zone, exp.Literal) and zone.this.upper() == "UTC"):
            raise ValueError(f"timezone({zone.sql()}, ...): only 'UTC' is transpiled to Spark")
        return exp.func("to_utc_timestamp", ts.copy(), exp.func("current_timezone"))
    return node


def _double_literal(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Literal) and not node.is_string and "." in node.this:
        return exp.cast(node.copy(), "DOUBLE")
    return node
