"""SQL sources against a real PostgreSQL server (a throwaway cluster from the Debian binaries).

The fixture runs initdb + pg_ctl on a free port in a temporary folder (as the ``postgres``
user when the tests run as root, since PostgreSQL refuses to run as root). Without the
binaries the tests skip locally and fail under CI=1, which installs them (scripts/system-deps.sh).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from personas.errors import SourceError
from personas.ingest.batch import ingest
from personas.lake import Lake
from tests.conftest import IN_CI

pytestmark = pytest.mark.postgres

PASSWORD = "p3rs0nas-test"


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        msg = (
            "PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb missing); "
            "`apt-get install -y postgresql` or `make system-deps` installs it"
        )
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict[str, str]]:
    """A running PostgreSQL cluster: yields host, port, user, password and database."""
    bindir = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="personas-pg-"))
    as_root = os.geteuid() == 0
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    root.chmod(0o755)
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if as_root:
        shutil.chown(root, "postgres")
        shutil.chown(pwfile, "postgres")
    data, log, port = root / "data", root / "log", _free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*run_as, *cmd], check=True, capture_output=True, text=True, timeout=120)

    try:
        run(
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "personas",
            "-E",
            "UTF8",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            f"--pwfile={pwfile}",
            "--no-sync",
        )
        run(
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )
    except subprocess.CalledProcessError as e:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {e.stderr or e.stdout}")
    try:
        yield {
            "host": "127.0.0.1",
            "port": str(port),
            "user": "personas",
            "password": PASSWORD,
            "dbname": "postgres",
        }
    finally:
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


ORDERS = [
    # customer, order_no, ordered_at, sku, qty, price, email
    ("C1", "A-1", "2024-03-01 10:00:00+00", "SKU1", 2, "9.90", "ann@example.com"),
    ("C1", "A-1", "2024-03-01 10:00:00+00", "SKU2", 1, "4.50", "ann@example.com"),
    ("C2", "A-2", "2024-03-02 11:30:00+01", "SKU1", 1, "9.90", "bob@example.com"),
    (None, "A-3", "2024-03-03 09:00:00+00", "SKU3", 1, "2.00", None),
    ("C2", "A-2", "2024-03-02 11:30:00+01", "SKU1", 1, "9.90", "bob@example.com"),
    ("C3", "A-4", "2024-03-04 08:00:00+00", "SKU4", 3, "0.00", "cy@example.com"),
]

MAPPING = """
name: shop_db
sources:
  - name: orders_db
    format: sql
    url: postgresql+psycopg://personas:${PGTEST_PASSWORD}@127.0.0.1:${PGTEST_PORT}/postgres
    query: SELECT * FROM orders ORDER BY id
    personal_data: {email: hash}
    table: transactions
    columns:
      customer_id: customer
      order_id: order_no
      ts: ordered_at
      product_id: sku
      quantity: qty
      unit_price: price
      currency: {value: EUR}
"""


def _connect(pg: dict[str, str]):
    import psycopg

    return psycopg.connect(
        host=pg["host"],
        port=pg["port"],
        user=pg["user"],
        password=pg["password"],
        dbname=pg["dbname"],
        autocommit=True,
    )


def _insert(pg: dict[str, str], rows: list[tuple]) -> None:
    with _connect(pg) as conn:
        conn.execute("""CREATE TABLE IF NOT EXISTS orders (id serial PRIMARY KEY,
                        customer text, order_no text, ordered_at timestamptz, sku text,
                        qty integer, price numeric(10, 2), email text)""")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO orders (customer, order_no, ordered_at, sku, qty, price,"
                " email) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                rows,
            )


def test_sql_source_accounting_and_idempotency(postgres, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PGTEST_PASSWORD", postgres["password"])
    monkeypatch.setenv("PGTEST_PORT", postgres["port"])
    monkeypatch.setenv("PERSONAS_PII_KEY", "pg-test-key")
    _insert(postgres, ORDERS)
    mapping = tmp_path / "shop.yaml"
    mapping.write_text(MAPPING)
    lake = tmp_path / "lake"

    r1 = ingest([], mapping, lake)
    assert r1.totals() == {"rows_in": 6, "accepted": 3, "quarantined": 2, "duplicates": 1}
    assert r1.sources[0].rules == {"duplicate": 1, "missing_customer_id": 1, "zero_price": 1}
    con = Lake(lake).connect()
    rows = con.execute(
        "SELECT customer_id, order_id, ts, unit_price, amount, source, "
        "source_row FROM transactions ORDER BY source_row"
    ).fetchall()
    assert [(r[0], r[1], r[3], r[4], r[6]) for r in rows] == [
        ("C1", "A-1", 9.9, 19.8, 1),
        ("C1", "A-1", 4.5, 4.5, 2),
        ("C2", "A-2", 9.9, 9.9, 3),
    ]
    assert rows[2][2].isoformat() == "2024-03-02T10:30:00+00:00"  # the +01 offset is kept
    assert rows[0][5] == "orders_db"
    raw = con.execute("SELECT raw FROM quarantine WHERE rule = 'zero_price'").fetchone()[0]
    # a column declared personal is left out of the quarantine's copy of the row
    assert "cy@example.com" not in raw and '"email"' not in raw and '"sku":"SKU4"' in raw

    # the same query result again: skipped, nothing added
    r2 = ingest([], mapping, lake)
    assert r2.batch_id is None and r2.skipped and r2.skipped[0][0] == "orders_db"
    assert Lake(lake).counts()["transactions"] == 3

    # new rows in the table: the query returns old and new; only the new ones are added
    _insert(postgres, [("C4", "A-5", "2024-03-05 12:00:00+00", "SKU1", 1, "9.90", None)])
    r3 = ingest([], mapping, lake)
    t = r3.totals()
    assert t["rows_in"] == 7 and t["rows_in"] == t["accepted"] + t["quarantined"] + t["duplicates"]
    assert t["accepted"] == 1 and t["duplicates"] == 4  # 3 already in the lake + 1 within
    assert Lake(lake).connect().execute("SELECT count(*) FROM transactions").fetchone()[0] == 4


def test_sql_errors_name_the_source_and_the_fix(postgres, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PGTEST_PASSWORD", "wrong")
    monkeypatch.setenv("PGTEST_PORT", postgres["port"])
    mapping = tmp_path / "shop.yaml"
    mapping.write_text(MAPPING)
    with pytest.raises(
        SourceError,
        match=r"source 'orders_db': the SQL query failed: .*"
        r"password authentication failed.*check url: and query: in the "
        r"mapping",
    ):
        ingest([], mapping, tmp_path / "lake")
    monkeypatch.setenv("PGTEST_PASSWORD", postgres["password"])
    mapping.write_text(MAPPING.replace("FROM orders", "FROM no_such_table"))
    with pytest.raises(SourceError, match=r"relation \"no_such_table\" does not exist"):
        ingest([], mapping, tmp_path / "lake")
    assert not Lake(tmp_path / "lake").exists() or not Lake(tmp_path / "lake").batches()
