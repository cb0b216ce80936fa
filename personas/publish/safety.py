"""The safety scan: nothing personal and no persona below the minimum size gets published.

Run over every file a publication exposes, after it is written and before ``latest`` moves.
The lake never stores personal data in clear, but a mapping mistake upstream must not reach a
marketing tool, so published files are checked again here.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from personas import runs
from personas.profile.profiles import slugify
from personas.publish.report import plotly_bundle

# Column names that hold personal data. The lake never stores them in clear, but a published
# file is checked anyway: a mapping mistake upstream must not reach a marketing tool.
PII_COLUMNS = frozenset(
    {
        "name",
        "full_name",
        "first_name",
        "last_name",
        "surname",
        "given_name",
        "customer_name",
        "email",
        "e_mail",
        "email_address",
        "mail",
        "phone",
        "phone_number",
        "telephone",
        "mobile",
        "mobile_phone",
        "address",
        "street",
        "street_address",
        "address_line_1",
        "address_line_2",
        "postcode",
        "postal_code",
        "zip",
        "zip_code",
        "birth_date",
        "date_of_birth",
        "dob",
        "ssn",
        "social_security_number",
        "national_id",
        "passport",
        "iban",
        "card_number",
        "credit_card",
        "ip",
        "ip_address",
    }
)
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def scan(folder: str | Path, profiles: Mapping[str, Any], skip: Sequence[str] = ()) -> list[str]:
    """Problems in the files under ``folder`` that would be published (empty when safe).

    Checks: no personal-data column in a Parquet/CSV file, no e-mail address
    in any text (the embedded plotly.js bundle, a third-party file, is left out), every
    audience file and card describes a persona or published group of at least the minimum
    size and matches its size in the profiles.
    """
    folder = Path(folder)
    min_size = int(profiles["min_persona_size"])
    sizes = {p["slug"]: (p["id"], p["size"]) for p in profiles["personas"]}
    personas = set(sizes)
    for g in profiles["groups"]:
        if g.get("published"):
            sizes[slugify(f"{g['id']}-{g['name']}")] = (g["id"], g["size"])
    problems: list[str] = []
    bundle = plotly_bundle()
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if not path.is_file() or (rel.parts and rel.parts[0] in skip):
            continue
        suffix = path.suffix.lower()
        try:
            if suffix == ".parquet":
                cols = pq.read_schema(path).names
                problems += _pii_columns(rel, cols)
                if rel.parts[0] == "audiences":
                    problems += _audience_problems(
                        rel, pq.read_metadata(path).num_rows, sizes, min_size
                    )
                if rel.parts[0] == "prospect_audiences":
                    problems += _prospect_problems(
                        rel, pq.read_metadata(path).num_rows, personas, min_size
                    )
                if "customer_id" in cols:
                    ids = pd.read_parquet(path, columns=["customer_id"])["customer_id"]
                    problems += _email_values(rel, ids.astype(str))
            elif suffix == ".csv":
                with open(path, newline="", encoding="utf-8") as fh:
                    reader = csv.reader(fh)
                    header = next(reader, [])
                    problems += _pii_columns(rel, header)
                    n_rows, emails = 0, []
                    for row in reader:  # streamed: audiences can hold millions of rows
                        n_rows += 1
                        if not emails:
                            emails = _email_values(rel, row)
                problems += emails
                if rel.parts[0] == "audiences":
                    problems += _audience_problems(rel, n_rows, sizes, min_size)
                if rel.parts[0] == "prospect_audiences":
                    problems += _prospect_problems(rel, n_rows, personas, min_size)
            elif suffix == ".json":
                obj = json.loads(path.read_text(encoding="utf-8"))
                problems += _json_problems(rel, obj)
                if rel.name == runs.UPLIFT:
                    problems += _uplift_problems(rel, obj, min_size)
            elif suffix in (".html", ".md", ".txt"):
                text = path.read_text(encoding="utf-8").replace(bundle, "")
                m = EMAIL_RE.search(text)
                if m:
                    problems.append(f"{rel}: contains an e-mail address ({m.group(0)[:3]}...)")
                if rel.parts[0] == "cards" and path.stem not in sizes:
                    problems.append(f"{rel}: card of no published persona")
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            problems.append(f"{rel}: cannot be checked ({type(exc).__name__}: {exc})")
    return problems


def _norm(col: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(col).lower()).strip("_")


def _pii_columns(rel: Path, cols: Sequence[str]) -> list[str]:
    bad = [c for c in cols if _norm(c) in PII_COLUMNS]
    return [f"{rel}: personal-data column(s) {bad}"] if bad else []


def _audience_problems(
    rel: Path, n: int, sizes: Mapping[str, tuple[str, int]], min_size: int
) -> list[str]:
    slug = rel.stem
    if slug not in sizes:
        return [f"{rel}: audience of no published persona or group"]
    gid, size = sizes[slug]
    out = []
    if n < min_size:
        out.append(f"{rel}: {n} customers, below the minimum persona size {min_size}")
    if n != size:
        out.append(f"{rel}: {n} customers but the profile of {gid} says {size}")
    return out


def _prospect_problems(rel: Path, n: int, personas: set[str], min_size: int) -> list[str]:
    """A look-alike audience names a published persona and is not below the minimum size."""
    if rel.stem not in personas:
        return [f"{rel}: prospect audience of no published persona"]
    if n < min_size:
        return [f"{rel}: {n} customers, below the minimum persona size {min_size}"]
    return []


def _email_values(rel: Path, values: Any) -> list[str]:
    """An e-mail address used as a customer id (or any cell) is personal data too."""
    for v in values:
        v = str(v)
        if "@" in v and EMAIL_RE.fullmatch(v.strip()):
            return [f"{rel}: a value looks like an e-mail address"]
    return []


def _uplift_problems(rel: Path, obj: Any, min_size: int) -> list[str]:
    """Campaign rows about fewer customers (both arms) than the minimum persona size."""
    out = []
    for camp in (obj or {}).get("campaigns", []):
        for r in camp.get("rows", []):
            n = int(r.get("n_treatment", 0)) + int(r.get("n_control", 0))
            if n < min_size:
                out.append(
                    f"{rel}: campaign {camp.get('campaign')!r} row {r.get('persona_id')!r} "
                    f"describes {n} customers, below the minimum of {min_size}"
                )
    return out


def _json_problems(rel: Path, obj: Any) -> list[str]:
    """E-mail addresses anywhere in a JSON document (keys included).

    Keys are not compared with :data:`PII_COLUMNS`: profiles key aggregates by category,
    channel and attribute values ("phone" is a sales channel), never by person.
    """
    out: list[str] = []

    def walk(o: Any, where: str) -> None:
        if isinstance(o, dict):
            for k, v in o.items():
                if EMAIL_RE.search(str(k)):
                    out.append(f"{rel}: e-mail address as a key at {where or '/'}")
                walk(v, f"{where}/{k}")
        elif isinstance(o, list):
            for i, v in enumerate(o):
                walk(v, f"{where}/{i}")
        elif isinstance(o, str) and EMAIL_RE.search(o):
            out.append(f"{rel}: e-mail address at {where}")

    walk(obj, "")
    return out
