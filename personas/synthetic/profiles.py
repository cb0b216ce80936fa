"""The customer export: demographics, loyalty and fake personal data of every customer row.

Demographics lean by persona (so they enrich the personas without defining them); names, e-mails
and phone numbers are fake but realistic, so ingestion has personal data to find and hash.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from personas.synthetic.columns import labels
from personas.synthetic.sampling import pick

# fmt: off
_COUNTRIES = (("FI", 0.62, "+358 4"), ("EE", 0.10, "+372 5"), ("DE", 0.12, "+49 15"),
              ("NL", 0.08, "+31 6"), ("IE", 0.08, "+353 8"))
_REGIONS = ("urban", "suburban", "rural")
_AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
_INCOME_BANDS = ("low", "middle", "high")
_HOUSEHOLDS = ("single", "couple", "family_with_children", "shared")
_TIERS = ("bronze", "silver", "gold")
# Per persona: region, age band, income band, household and loyalty-tier distributions.
_DEMOGRAPHICS = (
    ((0.50, 0.35, 0.15), (0.02, 0.10, 0.22, 0.28, 0.23, 0.15), (0.10, 0.40, 0.50),
     (0.25, 0.45, 0.20, 0.10), (0.05, 0.25, 0.70)),
    ((0.45, 0.35, 0.20), (0.18, 0.30, 0.22, 0.15, 0.10, 0.05), (0.45, 0.45, 0.10),
     (0.35, 0.25, 0.25, 0.15), (0.55, 0.35, 0.10)),
    ((0.40, 0.35, 0.25), (0.08, 0.18, 0.22, 0.22, 0.18, 0.12), (0.25, 0.50, 0.25),
     (0.30, 0.35, 0.25, 0.10), (0.70, 0.25, 0.05)),
    ((0.65, 0.28, 0.07), (0.22, 0.40, 0.22, 0.10, 0.05, 0.01), (0.20, 0.50, 0.30),
     (0.40, 0.30, 0.10, 0.20), (0.45, 0.40, 0.15)),
    ((0.25, 0.55, 0.20), (0.02, 0.20, 0.45, 0.25, 0.06, 0.02), (0.20, 0.60, 0.20),
     (0.03, 0.10, 0.85, 0.02), (0.40, 0.45, 0.15)),
    ((0.55, 0.35, 0.10), (0.15, 0.35, 0.25, 0.15, 0.07, 0.03), (0.30, 0.50, 0.20),
     (0.40, 0.30, 0.15, 0.15), (0.70, 0.25, 0.05)),
)
_FIRST_NAMES = (
    ("Aino", "aino"), ("Eino", "eino"), ("Helmi", "helmi"), ("Väinö", "vaino"), ("Sofia", "sofia"),
    ("Oliver", "oliver"), ("Emma", "emma"), ("Leo", "leo"), ("Ella", "ella"), ("Elias", "elias"),
    ("Olivia", "olivia"), ("Onni", "onni"), ("Lilja", "lilja"), ("Juho", "juho"),
    ("Matti", "matti"), ("Anna", "anna"), ("Mikko", "mikko"), ("Laura", "laura"), ("Jari", "jari"),
    ("Päivi", "paivi"), ("Tiina", "tiina"), ("Kari", "kari"), ("Liis", "liis"), ("Jaan", "jaan"),
    ("Lena", "lena"), ("Jonas", "jonas"), ("Sanne", "sanne"), ("Daan", "daan"),
    ("Aoife", "aoife"), ("Sean", "sean"), ("Maria", "maria"), ("Lucas", "lucas"),
)
_LAST_NAMES = (
    ("Korhonen", "korhonen"), ("Virtanen", "virtanen"), ("Mäkinen", "makinen"),
    ("Nieminen", "nieminen"), ("Mäkelä", "makela"), ("Hämäläinen", "hamalainen"),
    ("Laine", "laine"), ("Heikkinen", "heikkinen"), ("Koskinen", "koskinen"),
    ("Järvinen", "jarvinen"), ("Lehtonen", "lehtonen"), ("Saarinen", "saarinen"),
    ("Tamm", "tamm"), ("Saar", "saar"), ("Müller", "mueller"), ("Schmidt", "schmidt"),
    ("de Vries", "devries"), ("Jansen", "jansen"), ("Murphy", "murphy"), ("Kelly", "kelly"),
    ("Nyström", "nystrom"), ("Lindqvist", "lindqvist"), ("Salo", "salo"), ("Rantanen", "rantanen"),
)
_MAIL_DOMAINS = ("example.com", "example.fi", "example.net", "example.org")
# fmt: on


def draw_profiles(rng: np.random.Generator, cust: dict[str, np.ndarray]) -> dict[str, Any]:
    """Demographics, loyalty and (fake) personal data of each customer row."""
    persona = cust["persona"]
    n = persona.size
    cum = [np.cumsum(np.array([d[i] for d in _DEMOGRAPHICS]), axis=1) for i in range(5)]
    region, age, income, household, tier = (pick(rng, c, persona) for c in cum)
    member = rng.random(n) < np.where(cust["is_prospect"], 0.05, cust["loyalty"])
    tier = np.where(member, tier, -1)
    country = rng.choice(len(_COUNTRIES), n, p=[c[1] for c in _COUNTRIES])
    first = rng.integers(0, len(_FIRST_NAMES), n)
    last = rng.integers(0, len(_LAST_NAMES), n)
    suffix = np.where(rng.random(n) < 0.4, rng.integers(1, 100, n), -1)
    return {
        "first_seen": cust["first_seen"],
        "is_prospect": cust["is_prospect"],
        "member": member,
        "region": region,
        "age": age,
        "income": income,
        "household": household,
        "tier": tier,
        "country": country,
        "first": first,
        "last": last,
        "suffix": suffix,
        "domain": rng.integers(0, len(_MAIL_DOMAINS), n),
        "phone": rng.integers(0, 10**7, n),
        "phone_digit": rng.integers(0, 10, n),
    }


def customer_table(profile: dict[str, Any], ids: pa.Array) -> pa.Table:
    """Customer rows in export shape: codes decoded, names, e-mails and phones spelled."""
    first = np.array([f for f, _ in _FIRST_NAMES])[profile["first"]]
    last = np.array([s for s, _ in _LAST_NAMES])[profile["last"]]
    first_ascii = np.array([a for _, a in _FIRST_NAMES])[profile["first"]]
    last_ascii = np.array([a for _, a in _LAST_NAMES])[profile["last"]]
    suffix = pc.cast(
        pa.array(profile["suffix"], pa.int64(), mask=profile["suffix"] < 0), pa.string()
    )
    local = pc.binary_join_element_wise(
        pa.array(first_ascii), ".", pa.array(last_ascii), suffix, "", null_handling="skip"
    )
    email = pc.binary_join_element_wise(
        local, pa.array(np.array(_MAIL_DOMAINS)[profile["domain"]]), "@"
    )
    number = pc.utf8_lpad(pc.cast(pa.array(profile["phone"]), pa.string()), width=7, padding="0")
    phone = pc.binary_join_element_wise(
        pa.array(np.array([c[2] for c in _COUNTRIES])[profile["country"]]),
        pc.cast(pa.array(profile["phone_digit"]), pa.string()),
        " ",
        pc.utf8_slice_codeunits(number, 0, 3),
        " ",
        pc.utf8_slice_codeunits(number, 3, 7),
        "",
    )
    return pa.table(
        {
            "customer_id": ids,
            "first_seen": pa.array(profile["first_seen"], pa.timestamp("s")),
            "country": labels(tuple(c[0] for c in _COUNTRIES), profile["country"]),
            "region": labels(_REGIONS, profile["region"]),
            "age_band": labels(_AGE_BANDS, profile["age"]),
            "income_band": labels(_INCOME_BANDS, profile["income"]),
            "household": labels(_HOUSEHOLDS, profile["household"]),
            "loyalty_member": pa.array(profile["member"]),
            "loyalty_tier": labels(_TIERS, profile["tier"]),
            "is_prospect": pa.array(profile["is_prospect"]),
            "full_name": pc.binary_join_element_wise(pa.array(first), pa.array(last), " "),
            "email": email,
            "phone": phone,
        }
    )
