"""Text that goes into SQL: quoting of string literals and identifiers, one definition.

Paths, category names and column headers come from users' data; every one of them is quoted
here before it reaches DuckDB, so a quote in a file name or a header cannot end a literal.
"""

from __future__ import annotations


def quote(value: object) -> str:
    """``value`` as the inside of a single-quoted SQL string (quotes doubled)."""
    return str(value).replace("'", "''")


def literal(value: object) -> str:
    """``value`` as a complete single-quoted SQL string literal."""
    return "'" + quote(value) + "'"


def ident(name: str) -> str:
    """``name`` as a double-quoted SQL identifier (a column header with blanks or quotes)."""
    return '"' + str(name).replace('"', '""') + '"'


def first_line(error: object) -> str:
    """The first line of an error message (engines append hints and context below it).

    An empty message gives the exception's class name, or "" for an empty string.
    """
    text = str(error).strip()
    if text:
        return text.splitlines()[0]
    return "" if isinstance(error, str) else type(error).__name__
