"""SQL text built from users' data stays one literal or one identifier."""

from __future__ import annotations

import duckdb

from personas.sqltext import first_line, ident, literal, quote


def test_quoted_text_round_trips_through_duckdb() -> None:
    con = duckdb.connect()
    nasty = "O'Brien's \"shop\"; DROP TABLE x; --"
    assert con.execute(f"SELECT {literal(nasty)}").fetchone()[0] == nasty
    assert con.execute(f"SELECT '{quote(nasty)}'").fetchone()[0] == nasty
    con.execute(f"CREATE TABLE t ({ident(nasty)} INTEGER)")
    assert con.execute("SELECT * FROM t").description[0][0] == nasty


def test_first_line_keeps_the_message_not_the_engine_context() -> None:
    assert first_line(ValueError("bad value\nLINE 1: SELECT ...")) == "bad value"
    assert first_line(KeyError()) == "KeyError"
    assert first_line("") == ""
