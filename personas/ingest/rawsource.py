"""A source opened for one scan: a DuckDB view of its raw columns plus ``_row`` and ``_file``.

``_row`` is the 1-based data row within its file (header excluded), so a quarantined row can be
found again in the original; ``_file`` is the file's index within the group read together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pyarrow as pa


@dataclass
class RawSource:
    """A source opened for one scan: the view to select from and its columns with DuckDB types."""

    name: str
    sql: str
    columns: dict[str, str]
    files: list[str] = field(default_factory=lambda: [])
    rows: int | None = None
    counts: list[int] | None = None
    lookup_columns: list[str] = field(default_factory=list)
    lookup_flags: dict[str, str] = field(default_factory=dict)

    def data_columns(self) -> list[str]:
        """Columns that came from the source itself (not row numbers, not lookups)."""
        return [
            c
            for c in self.columns
            if c not in ("_row", "_file")
            and not c.startswith("_lk_")
            and c not in self.lookup_columns
        ]


def with_row(table: pa.Table) -> pa.Table:
    """``table`` with ``_row`` (1, 2, ...) and ``_file`` (0) in front: one file's rows."""
    import numpy as np

    table = table.add_column(0, "_row", pa.array(np.arange(1, table.num_rows + 1, dtype="int64")))
    return table.add_column(1, "_file", pa.array(np.zeros(table.num_rows, dtype="int32")))


def register_sql(con: duckdb.DuckDBPyConnection, view: str, sql: str, name: str) -> RawSource:
    """View ``view`` over ``sql``, with the columns and types DuckDB gives it."""
    con.execute(f"CREATE OR REPLACE VIEW {view} AS {sql}")
    cols = {r[0]: r[1] for r in con.execute(f"DESCRIBE {view}").fetchall()}
    return RawSource(name=name, sql=view, columns=cols, files=[name])


def register_arrow(
    con: duckdb.DuckDBPyConnection, view: str, table: pa.Table, name: str
) -> RawSource:
    """View ``view`` over an Arrow table read in Python (numbered as one file if it is not)."""
    if "_row" not in table.column_names:
        table = with_row(table)
    con.register(view + "_arrow", table)
    raw = register_sql(con, view, f"SELECT * FROM {view}_arrow", name)
    raw.rows = table.num_rows
    return raw
