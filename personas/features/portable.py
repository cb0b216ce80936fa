"""The feature SQL on other engines: one definition, transpiled with sqlglot.

The query is written in a dialect-neutral subset of DuckDB SQL; ``feature_sql(ctx, "spark")``
returns the same query for Spark SQL (or BigQuery, Snowflake, PostgreSQL, ...). Transpiling is
strict: a construct the target cannot express raises instead of producing a wrong query.
"""

from __future__ import annotations

import sqlglot
from sqlglot.errors import ErrorLevel

from personas.features.sql import Context, feature_query


def feature_sql(ctx: Context, dialect: str = "duckdb") -> str:
    """The feature query for ``dialect`` (any sqlglot dialect name)."""
    sql, _ = feature_query(ctx)
    if dialect == "duckdb":
        return sql
    return sqlglot.transpile(
        sql, read="duckdb", write=dialect, unsupported_level=ErrorLevel.RAISE, pretty=True
    )[0]
