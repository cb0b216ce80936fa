"""Personal data is found by column name (in several languages) and by content, and refused
until declared; once declared, neither the lake nor the quarantine holds a value in clear."""

from __future__ import annotations

import json
import random
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from personas.errors import MappingError
from personas.ingest import personal, textfiles
from personas.ingest.batch import ingest
from personas.ingest.personal import find_personal, mask, personal_content, personal_name
from personas.lake import Lake
from tests.ingest.pii_exports import find_in_clear, mapping_yaml, write_exports

NAMES = {
    "a person's name": [
        "Name", "full_name", "FirstName", "last name", "Nimi", "Etunimi", "asiakasnimi",
        "Namn", "Efternamn", "Vorname", "Nachname", "Kundenname", "nom", "Prénom", "nombre",
        "Apellidos", "naam", "Achternaam",
    ],
    "an e-mail address": [
        "email", "E-Mail", "e_mail_address", "Sähköposti", "sähköpostiosoite", "E-post",
        "E-Mail-Adresse", "courriel", "correo", "Correo electrónico", "emailadres",
    ],
    "a phone number": [
        "phone", "Mobile", "Puhelin", "puhelinnumero", "Telefon", "Telefonnummer",
        "kunden_telefonnummer", "Handy", "téléphone", "Teléfono", "telefoon",
    ],
    "an address": [
        "address", "Street", "Osoite", "katuosoite", "Adress", "Straße", "STRASSE",
        "Anschrift", "Lieferadresse", "adresse", "rue", "Dirección", "adres", "straat",
    ],
    "a personal identity code": ["ssn", "Henkilötunnus", "hetu", "Personnummer", "DNI", "BSN"],
    "a postcode": ["zip", "Postcode", "postinumero", "PLZ", "Postleitzahl", "code postal"],
    "a birth date": ["date_of_birth", "DOB", "syntymäaika", "Födelsedatum", "Geburtsdatum"],
    "a bank account or card": ["IBAN", "Tilinumero", "Kontonummer", "card_number"],
}  # fmt: skip


@pytest.mark.parametrize(("column", "kind"), [(c, k) for k, cols in NAMES.items() for c in cols])
def test_personal_names_in_many_languages(column: str, kind: str) -> None:
    assert personal_name(column) == kind


@pytest.mark.parametrize(
    "column",
    [
        "product_name", "ProductName", "tuotenimi", "Produktname", "produktnamn", "nom_produit",
        "category_name", "store_name", "campaign_name", "filename", "email_opens",
        "email_open_rate", "has_email", "is_mobile", "Country", "InvoiceNo", "StockCode",
        "Description", "household_id", "customer_id", "first_seen", "channel", "col3", "amount",
        "Asiakasnumero", "Kundnummer", "Kundennummer", "Liittynyt", "comment", "nombre_commandes",
    ],
)  # fmt: skip
def test_names_about_something_else_are_not_personal(column: str) -> None:
    assert personal_name(column) is None


VALID = {
    "is_iban": ["FI21 1234 5600 0007 85", "DE89370400440532013000", "GB82 WEST 1234 5698 7654 32"],
    "is_henkilotunnus": ["131052-308T", "010594Y9021", "020594X903P"],
    "is_personnummer": ["811218-9876", "19811218-9876", "8112189876"],
    "is_card": ["4111 1111 1111 1111", "5500-0000-0000-0004"],
    "is_phone": ["+358 40 374 6159", "040 123 4567", "0401234567", "+46 70 123 45 67",
                 "09-123 456", "(555) 123-4567"],
    "is_email": ["saa.150@example.fi", "Jurgen.Muller+shop@mail.example.de"],
    "is_address": ["Mannerheimintie 12 A 5", "Hämeenkatu 3 B 12, 33100 Tampere",
                   "Storgatan 1B", "Hauptstraße 5", "Bahnhofstr. 12", "Keizersgracht 123",
                   "12 Baker Street", "5 rue de la Paix", "Calle Mayor 12"],
}  # fmt: skip
# the same with one character changed (a check digit, a date) or close look-alikes
INVALID = {
    "is_iban": ["FI21 1234 5600 0007 86", "DE89370400440532013001", "AB12CDEFGHIJKLM"],
    "is_henkilotunnus": ["131052-308U", "310252-308T", "131052Z308T"],
    "is_personnummer": ["811218-9875", "811318-9876"],
    "is_card": ["4111 1111 1111 1112", "1111 1111 1111 1117"],
    "is_phone": ["2024-01-15", "01.02.2024", "0.50", "536365", "17850.0", "00001", "19970101",
                 "0041220576005", "1234567890", "00100", "-12"],
    "is_email": ["a@b", "x@y.z", "@example.fi", "name at example.fi"],
    "is_address": ["2 WAY ADAPTER", "WHITE HANGING HEART T-LIGHT HOLDER", "12 pencils",
                   "Quick and helpful."],
}  # fmt: skip


@pytest.mark.parametrize(("check", "value"), [(k, v) for k, vs in VALID.items() for v in vs])
def test_valid_codes_are_recognised(check: str, value: str) -> None:
    assert getattr(personal, check)(value)


@pytest.mark.parametrize(("check", "value"), [(k, v) for k, vs in INVALID.items() for v in vs])
def test_wrong_check_digits_and_lookalikes_are_not(check: str, value: str) -> None:
    assert not getattr(personal, check)(value)


def test_business_columns_do_not_look_personal() -> None:
    """Product codes, prices, dates, order ids, barcodes and categories pass the content check,
    even in a column whose name says nothing."""
    rng = random.Random(1)
    n = 400
    ids = range(n)

    def ean(body: str) -> str:
        s = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
        return body + str((10 - s % 10) % 10)

    sample = {
        "c1": [f"O{rng.randrange(10**9):09d}" for _ in range(n)],
        "c2": [str(rng.randrange(536365, 581587)) for _ in range(n)],
        "c3": [f"{rng.randrange(1, 9999) / 100:.2f}" for _ in range(n)],
        "c4": [f"{rng.randrange(1, 28):02d}.{rng.randrange(1, 12):02d}.2024" for _ in range(n)],
        "c5": [f"2024-{rng.randrange(1, 12):02d}-{rng.randrange(1, 28):02d} 10:00" for _ in ids],
        "c6": [ean(f"00{rng.randrange(10**10):010d}") for _ in range(n)],
        "c7": [f"{rng.choice(['FAS', 'GRO', 'HOM'])}-{rng.randrange(99999):05d}" for _ in range(n)],
        "c8": [f"0{rng.randrange(10**9):09d}" if i % 3 == 0 else str(i) for i in range(n)],
        "c9": [rng.choice(["United Kingdom", "New Zealand", "Saudi Arabia"]) for _ in range(n)],
        "c10": [f"{rng.randrange(10**10):010d}" for _ in range(n)],
        "c11": [f"{rng.randrange(1, 40)},{rng.randrange(0, 99):02d}" for _ in range(n)],
        "c12": [f"{rng.randrange(10**15, 10**16)}" for _ in range(n)],
        "c13": [rng.choice(["Phone", "Web", "Multichannel"]) for _ in range(n)],
        "c14": [f"{rng.randrange(0, 99999):05d}" for _ in range(n)],
    }  # fmt: skip
    assert find_personal(sample) == []


def test_content_needs_a_share_of_the_sample() -> None:
    emails = [f"user{i}@example.com" for i in range(10)]
    assert personal_content("note", emails + ["ok"] * 10) is not None  # half the values
    assert personal_content("note", emails[:3] + ["ok"] * 17) is None  # a stray address
    names = ["Sää Mäkinen", "Åsa Nyström", "Jürgen Müller", "Zoë Schäfer", "Aino Järvelä"]
    assert personal_content("c", names).kind == "person names"
    assert personal_content("c", ["United Kingdom"] * 5) is None  # a repeated value


def test_masked_examples_show_the_kind_never_the_value() -> None:
    assert mask("saa.150@example.fi", "email") == "s***@e***.fi"
    assert mask("+358 40 374 6159", "digits") == "+*** ** *** **59"
    assert mask("FI21 1234 5600 0007 85", "iban") == "FI** **** **** **** 85"
    assert mask("131052-308T", "code") == "******-****"
    assert mask("Sää Mäkinen") == "S** M******"


@pytest.fixture
def planted(tmp_path: Path):
    rng = random.Random(3)
    ids = [f"K{i:05d}" for i in range(60)]
    seen = [f"2023-{1 + i % 12:02d}-{1 + rng.randrange(28):02d} 12:00:00" for i in range(60)]
    return write_exports(tmp_path / "in", ids, seen)


def test_every_layout_is_refused_naming_its_personal_columns(planted, tmp_path: Path) -> None:
    """English, Finnish (Windows-1252), Swedish and German headers, and col1..col8: each export
    is refused naming exactly its personal columns, with masked examples only."""
    for e in planted.exports:
        m = tmp_path / f"m_{e.source}.yaml"
        m.write_text(mapping_yaml(planted, declare=False), encoding="utf-8")
        with pytest.raises(MappingError) as err:
            ingest([e.path], m, tmp_path / "lake")
        msg = str(err.value)
        assert msg.startswith(f"{e.path.name}: personal data in undeclared column(s) ")
        assert msg.endswith(
            f"declare each under personal_data: in source {e.source!r} as drop or hash (or, "
            "if it is not personal, list it under not_personal:)"
        )
        named = {c for c in e.personal if f"{c!r} (" in msg}
        assert named == set(e.personal), msg
        assert f"{e.id_column!r} (" not in msg and f"{e.date_column!r} (" not in msg
        assert "\n" not in msg
        assert not [v for v in planted.values if v in msg], msg
        if e.source == "x":  # nothing in the names: all found by content
            assert "its name suggests" not in msg
            for kind in ("person names", "e-mail addresses", "phone numbers", "IBANs",
                         "henkilötunnus", "street addresses"):  # fmt: skip
                assert kind in msg, msg
        assert Lake(tmp_path / "lake").batches() == []


def test_the_finnish_windows_1252_export_of_the_issue(planted, tmp_path: Path) -> None:
    fi = next(e for e in planted.exports if e.source == "fi")
    assert "Sähköposti".encode("cp1252") in fi.path.read_bytes()
    m = tmp_path / "m.yaml"
    m.write_text(mapping_yaml(planted, declare=False), encoding="utf-8")
    with pytest.raises(MappingError) as err:
        ingest([fi.path], m, tmp_path / "lake")
    msg = str(err.value)
    assert "'Nimi' (person names, 12 of 12 sampled values, e.g. " in msg
    assert "'Sähköposti' (e-mail addresses, 12 of 12 sampled values, e.g. " in msg
    assert "'Henkilötunnus' (Finnish henkilötunnus codes with a valid check character, 12 of" in msg


def test_declared_exports_leave_no_personal_value_in_lake_or_quarantine(
    planted, tmp_path: Path
) -> None:
    m = tmp_path / "m.yaml"
    m.write_text(mapping_yaml(planted, declare=True), encoding="utf-8")
    lake = tmp_path / "lake"
    report = ingest([e.path for e in planted.exports], m, lake)
    t = report.totals()
    assert (t["rows_in"], t["accepted"], t["quarantined"]) == (60, 50, 10)
    q = duckdb.sql(f"SELECT raw FROM '{lake}/quarantine/**/*.parquet'").fetchall()
    assert len(q) == 10
    for (raw,) in q:  # the rest of the row is kept, the personal columns are not
        keys = set(json.loads(raw))
        assert keys and not keys & {c for e in planted.exports for c in e.personal}
    hits, scanned = find_in_clear(lake, planted.values)
    assert len(scanned) >= 3 and hits == []
    # hashed e-mails are not in the lake's customers table either: only the declared columns
    cust = pd.read_parquet(lake / "customers")
    assert len(cust) == 50 and not cust.isin(planted.values).any().any()


def test_a_large_file_is_checked_on_its_first_chunk(
    planted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files cut into chunks are judged too, and the message names the file, not a chunk."""
    monkeypatch.setattr(textfiles, "SPLIT_BYTES", 1)
    monkeypatch.setattr(textfiles, "CHUNK_BYTES", 1 << 10)
    x = next(e for e in planted.exports if e.source == "x")
    m = tmp_path / "m.yaml"
    m.write_text(mapping_yaml(planted, declare=False), encoding="utf-8")
    with pytest.raises(MappingError, match=r"^export_x.csv: personal data in undeclared column"):
        ingest([x.path], m, tmp_path / "lake")


def test_not_personal_and_pseudonymised_columns_count_as_declared(tmp_path: Path) -> None:
    f = tmp_path / "orders.csv"
    rows = [
        f"{i}@example.com,O{i},2024-01-0{1 + i % 9} 10:00:00,P1,Name {i},1,2.50" for i in range(20)
    ]
    f.write_text("who,order,date,product,product_name,qty,price\n" + "\n".join(rows) + "\n")
    m = tmp_path / "m.yaml"
    m.write_text(
        "name: t\nsources:\n  - name: orders\n    files: ['*.csv']\n"
        "    not_personal: [product_name]\n    table: transactions\n    columns:\n"
        "      customer_id: {column: who, pseudonymise: true}\n      order_id: order\n"
        "      ts: date\n      product_id: product\n      quantity: qty\n      unit_price: price\n"
    )
    report = ingest([f], m, tmp_path / "lake")
    assert report.totals()["accepted"] == 20
    hits, _ = find_in_clear(tmp_path / "lake", {f"{i}@example.com" for i in range(10, 20)})
    assert hits == []


def test_a_lookup_column_is_judged_and_declared_like_a_source_column(tmp_path: Path) -> None:
    rows = [f"C{i},O{i},2024-01-0{1 + i % 9} 10:00:00,P1,1,2.50" for i in range(20)]
    (tmp_path / "orders.csv").write_text(
        "customer,order,date,product,qty,price\n" + "\n".join(rows) + "\n"
    )
    people = [f"C{i},Mäki {i},contact.{i}@example.org" for i in range(20)]
    (tmp_path / "people.csv").write_text("customer,who,contact\n" + "\n".join(people) + "\n")
    text = (
        "name: t\nsources:\n  - name: orders\n    files: ['orders.csv']\n{decl}"
        "    lookups:\n      - {{name: people, file: people.csv, key: customer, "
        "columns: [contact]}}\n    table: transactions\n    columns:\n"
        "      customer_id: customer\n      order_id: order\n      ts: date\n"
        "      product_id: product\n      quantity: qty\n      unit_price: price\n"
        "      category: {{expr: \"'x' || coalesce(contact, '')\"}}\n"
    )
    m = tmp_path / "m.yaml"
    m.write_text(text.format(decl=""))
    with pytest.raises(MappingError, match=r"'contact' \(e-mail addresses, 20 of 20 sampled"):
        ingest([tmp_path / "orders.csv"], m, tmp_path / "lake")
    m.write_text(text.format(decl="    personal_data: {contact: hash}\n"))
    ingest([tmp_path / "orders.csv"], m, tmp_path / "lake")
    emails = {f"contact.{i}@example.org" for i in range(20)}
    hits, _ = find_in_clear(tmp_path / "lake", emails)
    assert hits == []
    cats = pd.read_parquet(tmp_path / "lake" / "transactions")["category"]
    assert cats.str.len().eq(65).all()  # 'x' and the hash, not the address


def test_an_encoding_error_in_a_personal_column_shows_no_fragment_of_it(tmp_path: Path) -> None:
    """Declared UTF-8 but written in Windows-1252: the message names line, column and byte, and
    masks the bytes around it when the column is personal."""
    from personas.errors import SourceError

    rows = [f"C{i},O{i},2024-01-0{1 + i % 9} 10:00:00,P1,1,2.50,Sää Mäkinen{i}" for i in range(5)]
    f = tmp_path / "orders.csv"
    f.write_bytes(
        ("customer,order,date,product,qty,price,Nimi\n" + "\n".join(rows) + "\n").encode("cp1252")
    )
    m = tmp_path / "m.yaml"
    m.write_text(
        "name: t\nsources:\n  - name: orders\n    files: ['*.csv']\n"
        "    personal_data: {Nimi: drop}\n    table: transactions\n    columns:\n"
        "      customer_id: customer\n      order_id: order\n      ts: date\n"
        "      product_id: product\n      quantity: qty\n      unit_price: price\n"
    )
    with pytest.raises(SourceError) as err:
        ingest([f], m, tmp_path / "lake")
    msg = str(err.value)
    assert msg.startswith("orders.csv line 2, column 'Nimi': bytes b'\\xe4' (in b'")
    assert "set encoding:" in msg
    assert "M\\xe4kin" not in msg and "kinen" not in msg and "2.50" not in msg


def test_the_workspace_scan_finds_values_wherever_they_are(tmp_path: Path) -> None:
    """The scan used above can fail: Parquet cells, zip members, gzip, cp1252 and HTML."""
    import gzip
    import zipfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    values = {"Sää Mäkinen", "saa.makinen@example.fi", "FI21 1234 5600 0007 85", "+358 40 1"}
    pq.write_table(pa.table({"x": ["a", "Sää Mäkinen"]}), tmp_path / "t.parquet")
    with zipfile.ZipFile(tmp_path / "m.skops", "w") as z:
        z.writestr("schema.json", '{"who": "saa.makinen@example.fi"}')
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(b"FI2112345600000785\n"))
    (tmp_path / "r.html").write_bytes("<td>+358 40 1</td>".encode("cp1252"))
    (tmp_path / "clean.txt").write_text("nothing here")
    hits, scanned = find_in_clear(tmp_path, values)
    assert {h.split(":")[0] for h in hits} == {"a.csv.gz", "m.skops", "r.html", "t.parquet"}
    assert len(scanned) == 5
