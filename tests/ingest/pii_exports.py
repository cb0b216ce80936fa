"""Customer exports full of (fake but valid) personal data, in five layouts, for the PII tests.

English, Finnish (Windows-1252, semicolons), Swedish, German headers, and one export whose
columns say nothing (``col1`` .. ``col8``). Each row carries a name, an e-mail address, a phone
number, a street address and, by country, an IBAN, a henkilötunnus or a personnummer, all with
valid check digits. :func:`write_exports` returns the files, the planted values (to search the
workspace for afterwards) and, per file, which columns are personal.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

_FIRST = ("Sää", "Väinö", "Åsa", "Jürgen", "Zoë", "Aino", "Öjvind", "Björn", "Élodie", "Käthe")
_LAST = (
    "Mäkinen",
    "Pyykkönen",
    "Lindqvist",
    "Müller",
    "Østergård",
    "Hämäläinen",
    "Nyström",
    "Schäfer",
    "Järvelä",
    "Brännström",
)
_ASCII = str.maketrans("äöåüëéøÄÖÅÜÉØ", "aoaueeoAOAUEO")
_HETU_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"


def _iban(country: str, bban: str) -> str:
    digits = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    check = 98 - int(digits) % 97
    raw = f"{country}{check:02d}{bban}"
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def _hetu(i: int) -> str:
    dd, mm, yy, num = 1 + i % 28, 1 + i % 12, 50 + i % 50, 100 + i % 800
    body = f"{dd:02d}{mm:02d}{yy:02d}"
    return f"{body}-{num:03d}{_HETU_CHECK[int(f'{body}{num:03d}') % 31]}"


def _personnummer(i: int) -> str:
    body = f"{60 + i % 40:02d}{1 + i % 12:02d}{1 + i % 28:02d}{100 + i % 900:03d}"
    total = 0
    for k, ch in enumerate(body):
        d = int(ch) * (2 if k % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return f"{body[:6]}-{body[6:]}{(10 - total % 10) % 10}"


@dataclass
class Export:
    """One written export: its file, source name, id column and personal columns."""

    path: Path
    source: str
    id_column: str
    date_column: str
    personal: dict[str, str]  # column -> the treatment the test declares (drop / hash)
    options: dict[str, str] = field(default_factory=dict)


@dataclass
class Planted:
    exports: list[Export]
    values: set[str]  # every personal value written, as written


def _person(i: int) -> tuple[str, str, str]:
    """Name, e-mail address and a 7-digit number of person ``i`` (names distinct to 11,000)."""
    first = _FIRST[i % 10]
    if i >= 1100:
        first += " " + _FIRST[(i // 1100) % 10]
    a, b = (i // 10) % 10, (i // 100) % 11
    last = _LAST[a] if b == 10 else f"{_LAST[a]}-{_LAST[b]}"
    local = f"{first.replace(' ', '.')}.{last}".translate(_ASCII).lower()
    email = f"{local}.{i}@example.fi"
    return f"{first} {last}", email, f"{i:07d}"


def write_exports(
    folder: Path, ids: Sequence[str], first_seen: Sequence[str], bad_dates: int = 2
) -> Planted:
    """Split ``ids`` over the five exports; the first ``bad_dates`` rows of each have an
    impossible date (so the quarantine holds rows of every export)."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = [list(range(k, len(ids), 5)) for k in range(5)]
    values: set[str] = set()
    exports = []

    def date(i: int, j: int) -> str:
        return "2023-02-30 10:00:00" if j < bad_dates else first_seen[i]

    def write(name: str, header: list[str], rows: list[list[str]], sep: str, enc: str) -> Path:
        buf = io.StringIO()
        w = csv.writer(buf, delimiter=sep, lineterminator="\r\n")
        w.writerow(header)
        w.writerows(rows)
        p = folder / name
        p.write_bytes(buf.getvalue().encode(enc))
        return p

    rows = []
    for j, i in enumerate(parts[0]):
        name, email, n = _person(i)
        row = [
            ids[i],
            date(i, j),
            name,
            email,
            f"+44 7700 9{n[-5:]}",
            f"{1 + i % 200} Baker Street",
        ]
        rows.append(row)
        values.update(row[2:])
    p = write(
        "customers_en.csv",
        ["customer_id", "signup", "full_name", "email", "phone", "street_address"],
        rows,
        ",",
        "utf-8",
    )
    exports.append(
        Export(
            p,
            "en",
            "customer_id",
            "signup",
            {"full_name": "drop", "email": "hash", "phone": "drop", "street_address": "drop"},
        )
    )

    rows = []
    for j, i in enumerate(parts[1]):
        name, email, n = _person(i)
        row = [
            ids[i],
            date(i, j),
            name,
            email.replace("@", "@posti."),
            f"+358 40 {n[-7:-4]} {n[-4:]}",
            f"Hämeenkatu {1 + i % 90} B {1 + i % 30}, 33100 Tampere",
            _hetu(i),
            _iban("FI", f"{12345600000000 + i:014d}"),
        ]
        rows.append(row)
        values.update(row[2:])
    p = write(
        "asiakkaat_fi.csv",
        [
            "Asiakasnumero",
            "Liittynyt",
            "Nimi",
            "Sähköposti",
            "Puhelin",
            "Osoite",
            "Henkilötunnus",
            "Tilinumero",
        ],
        rows,
        ";",
        "cp1252",
    )
    exports.append(
        Export(
            p,
            "fi",
            "Asiakasnumero",
            "Liittynyt",
            {
                "Nimi": "drop",
                "Sähköposti": "hash",
                "Puhelin": "drop",
                "Osoite": "drop",
                "Henkilötunnus": "drop",
                "Tilinumero": "drop",
            },
            {"encoding": "cp1252", "delimiter": ";"},
        )
    )

    rows = []
    for j, i in enumerate(parts[2]):
        name, email, n = _person(i)
        row = [
            ids[i],
            date(i, j),
            name,
            email.replace("example.fi", "example.se"),
            f"070-{n[-7:-4]} {n[-4:-2]} {n[-2:]}",
            f"Storgatan {1 + i % 80}",
            _personnummer(i),
        ]
        rows.append(row)
        values.update(row[2:])
    p = write(
        "kunder_sv.csv",
        ["Kundnummer", "Registrerad", "Namn", "E-post", "Telefon", "Adress", "Personnummer"],
        rows,
        ",",
        "utf-8",
    )
    exports.append(
        Export(
            p,
            "sv",
            "Kundnummer",
            "Registrerad",
            {
                "Namn": "drop",
                "E-post": "hash",
                "Telefon": "drop",
                "Adress": "drop",
                "Personnummer": "drop",
            },
        )
    )

    rows = []
    for j, i in enumerate(parts[3]):
        name, email, n = _person(i)
        first, _, last = name.rpartition(" ")
        row = [
            ids[i],
            date(i, j),
            first,
            last,
            email.replace("example.fi", "example.de"),
            f"+49 151 {n}",
            f"Hauptstraße {1 + i % 120}",
            _iban("DE", f"{370400440000000000 + i:018d}"),
        ]
        rows.append(row)
        values.update(row[4:])
        values.add(name)  # written apart: the surname alone where it cannot be a fragment
        if not last.isascii():
            values.add(last)
    p = write(
        "kunden_de.csv",
        [
            "Kundennummer",
            "Anmeldedatum",
            "Vorname",
            "Nachname",
            "E-Mail",
            "Telefonnummer",
            "Straße",
            "IBAN",
        ],
        rows,
        ",",
        "utf-8",
    )
    exports.append(
        Export(
            p,
            "de",
            "Kundennummer",
            "Anmeldedatum",
            {
                "Vorname": "drop",
                "Nachname": "drop",
                "E-Mail": "hash",
                "Telefonnummer": "drop",
                "Straße": "drop",
                "IBAN": "drop",
            },
        )
    )

    rows = []
    for j, i in enumerate(parts[4]):
        name, email, n = _person(i)
        row = [
            ids[i],
            date(i, j),
            name,
            email.replace("example.fi", "example.net"),
            f"040 {n[-7:-4]} {n[-4:]}",
            _iban("FI", f"{79440500000000 + i:014d}"),
            _hetu(i + 7),
            f"Mannerheimintie {1 + i % 150} A {1 + i % 40}",
        ]
        rows.append(row)
        values.update(row[2:])
    p = write("export_x.csv", [f"col{k}" for k in range(1, 9)], rows, ",", "utf-8")
    exports.append(
        Export(
            p,
            "x",
            "col1",
            "col2",
            {f"col{k}": "drop" for k in range(3, 9)} | {"col4": "hash"},
        )
    )
    return Planted(exports, values)


def mapping_yaml(planted: Planted, declare: bool, extra_sources: str = "") -> str:
    """A mapping for the five exports (customers table); with ``declare`` the personal columns
    are declared as the test chose, otherwise not at all."""
    lines = ["name: pii_test", "sources:"]
    for e in planted.exports:
        lines += [
            f"  - name: {e.source}",
            f'    files: ["{e.path.name}"]',
            "    format: csv",
        ]
        lines += [f'    {k}: "{v}"' for k, v in e.options.items()]
        if declare:
            decl = ", ".join(f'"{c}": {how}' for c, how in e.personal.items())
            lines.append(f"    personal_data: {{{decl}}}")
        lines += [
            "    table: customers",
            "    columns:",
            f'      customer_id: "{e.id_column}"',
            f'      first_seen: {{column: "{e.date_column}", format: "%Y-%m-%d %H:%M:%S"}}',
        ]
    return "\n".join(lines) + "\n" + extra_sources


def _texts_of(path: Path, data: bytes) -> list[str]:
    """Every text a file holds, decoded: Parquet and Arrow cell by cell, archives member by
    member, compressed files inflated, anything else as UTF-8 and as Windows-1252 bytes."""
    import gzip
    import zipfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    if data[:4] == b"PAR1":
        table = pq.read_table(io.BytesIO(data))
        return [_cells(table), data.decode("utf-8", "replace")]
    if data[:6] == b"ARROW1":
        table = pa.ipc.open_file(io.BytesIO(data)).read_all()
        return [_cells(table), data.decode("utf-8", "replace")]
    if data[:2] == b"\x1f\x8b":
        return _texts_of(path, gzip.decompress(data))
    if data[:4] == b"PK\x03\x04":
        out = []
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for name in z.namelist():
                out += _texts_of(path / name, z.read(name))
        return out
    return [data.decode("utf-8", "replace"), data.decode("cp1252", "replace")]


def _cells(table: object) -> str:
    import pyarrow as pa

    assert isinstance(table, pa.Table)
    parts = [" ".join(table.column_names)]
    for col in table.columns:
        parts += [str(v) for v in col.to_pylist()]
    return "\n".join(parts)


def find_in_clear(root: Path, values: set[str]) -> tuple[list[str], list[str]]:
    """(``file: value`` for every planted value found under ``root``, the files scanned).

    Each value is also looked for without its blanks and in lower case (an IBAN or phone
    number normalised, an e-mail address folded). A value is searched for in full only in
    texts that hold all of its words, which keeps the scan of large reports fast.
    """
    import re

    needles = {v for v in values} | {v.replace(" ", "") for v in values}
    needles |= {n.lower() for n in needles}
    words = {n: set(re.findall(r"\w+", n)) for n in needles if len(n) >= 5}
    hits, scanned = [], []
    import os

    files = [  # symlinks followed: published/latest is one
        Path(d) / f for d, _, fs in os.walk(root, followlinks=True) for f in fs
    ]
    for path in sorted(p for p in files if p.is_file()):
        scanned.append(str(path.relative_to(root)))
        for text in _texts_of(path, path.read_bytes()):
            present = set(re.findall(r"\w+", text))
            hits += [
                f"{path.relative_to(root)}: {n}"
                for n, ws in words.items()
                if ws <= present and n in text
            ]
    return hits, scanned
