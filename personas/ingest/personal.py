"""Find personal data in a source before anything is ingested: by column name and by content.

A header in any language (``Nimi``, ``Sähköposti``, ``Anschrift``, ``téléphone``) or none at
all (``col3``) may hold names, e-mail addresses or identity codes. So every text column of every
source is judged twice on a sample of its values:

* **by name**: the column name, folded to lower-case ASCII (``Sähköposti`` -> ``sahkoposti``,
  ``Straße`` -> ``strasse``) and cut into words (``E-Mail-Adresse``, ``FirstName``,
  ``kunden_telefonnummer``), is compared with personal-data words in English, Finnish, Swedish,
  German, French, Spanish and Dutch, whole or as the head or tail of a compound
  (``asiakasnimi``, ``Kundenname``). A word such as *product* or *category* beside it
  (``product_name``, ``tuotenimi``, ``email_opens``) says the column is about something else.
* **by content**: a column is personal when at least :data:`SHARE` of its sampled non-empty
  values are e-mail addresses, phone numbers, IBANs (mod-97 checksum), Finnish personal
  identity codes (henkilötunnus, check character and date), Swedish personnummer (Luhn and
  date), payment card numbers (Luhn), street addresses (a street word and a house number), or,
  at :data:`NAME_SHARE`, person names (two to four capitalised words, mostly distinct). Checksums
  and the share keep product codes, prices, dates and order ids from looking personal.

Nothing here prints a value in clear: examples in messages go through :func:`mask`.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: Share of a column's sampled non-empty values that must look personal for it to count.
SHARE = 0.5
#: Person names have no checksum: a stricter share, and most values must differ.
NAME_SHARE = 0.8
NAME_DISTINCT = 0.5
NAME_MIN_VALUES = 5
#: Rows read from the start of each source (each file group) for the content check.
SAMPLE_ROWS = 1000

# ---- by name ----------------------------------------------------------------------------------
# What a (folded) word means, whole words only.


def _words_of(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_WORDS: dict[str, tuple[str, ...]] = {
    "a person's name": _words_of(
        "name names fullname firstname lastname surname forename givenname middlename "
        "customername username nickname nimi etunimi sukunimi kokonimi asiakasnimi namn "
        "fornamn efternamn tilltalsnamn vorname nachname familienname rufname nom prenom "
        "patronyme nombre apellido apellidos naam voornaam achternaam familienaam "
        "tussenvoegsel"
    ),
    "an e-mail address": _words_of(
        "email mail emailaddress mailaddress emails sahkoposti sposti epost epostadress mejl "
        "mejladress emailadresse mailadresse courriel mel correo correoelectronico emailadres "
        "mailadres"
    ),
    "a phone number": _words_of(
        "phone phones telephone tel phonenumber mobile mobilephone cell cellphone fax puhelin "
        "puh puhelinnumero matkapuhelin gsm kannykka telefon telefonnummer mobil mobiltelefon "
        "mobilnummer handy handynummer festnetz telefono movil celular telefoon "
        "telefoonnummer mobiel gsmnummer"
    ),
    "an address": _words_of(
        "address addresses street streetaddress addressline addressline1 addressline2 osoite "
        "katuosoite lahiosoite postiosoite jakeluosoite adress gatuadress postadress "
        "utdelningsadress adresse anschrift strasse hausnummer wohnort rue direccion calle "
        "domicilio adres straat huisnummer woonplaats"
    ),
    "a postcode": _words_of(
        "postcode postalcode zip zipcode postinumero postnummer plz postleitzahl codepostal "
        "codigopostal"
    ),
    "a personal identity code": _words_of(
        "ssn socialsecuritynumber nationalid passport passportnumber henkilotunnus hetu sotu "
        "personnummer personnr samordningsnummer steuerid personalausweis "
        "sozialversicherungsnummer nir insee dni nif nie bsn burgerservicenummer"
    ),
    "a birth date": _words_of(
        "dob birthdate dateofbirth birthday syntymaaika syntymapaiva fodelsedatum fodelsedag "
        "geburtsdatum geburtstag naissance datedenaissance nacimiento fechadenacimiento "
        "fechanacimiento geboortedatum verjaardag"
    ),
    "a bank account or card": _words_of(
        "iban accountnumber bankaccount cardnumber creditcard tilinumero pankkitili "
        "kontonummer bankkonto kortnummer kreditkarte kartennummer rekeningnummer"
    ),
    "an IP address": _words_of("ip ipaddress ipadresse"),
}
_BY_WORD = {w: kind for kind, words in _WORDS.items() for w in words}
# Compound heads and tails (German, Finnish, Swedish and Dutch write one word): "Kundenname",
# "asiakasnimi", "Telefonnummer", "sähköpostiosoite", "Lieferadresse".
_TAILS = {
    "nimi": "a person's name",
    "namn": "a person's name",
    "name": "a person's name",
    "naam": "a person's name",
    "sahkoposti": "an e-mail address",
    "mail": "an e-mail address",
    "epost": "an e-mail address",
    "puhelin": "a phone number",
    "telefon": "a phone number",
    "telefoon": "a phone number",
    "phone": "a phone number",
    "osoite": "an address",
    "adress": "an address",
    "adresse": "an address",
    "adres": "an address",
    "anschrift": "an address",
    "strasse": "an address",
    "straat": "an address",
}
_HEADS = {
    "sahkoposti": "an e-mail address",
    "email": "an e-mail address",
    "puhelin": "a phone number",
    "telefon": "a phone number",
    "telefoon": "a phone number",
    "henkilotunnus": "a personal identity code",
    "personnummer": "a personal identity code",
    "geburts": "a birth date",
    "syntyma": "a birth date",
}
# Words that say a name-like column is about something else than a person.
_QUALIFIERS = frozenset(
    _words_of(
        "abteilung app article articulo artikel artikkeli avdelning bedrijf bounced brand "
        "browser butik campagne campaign campana categoria categorie categories category "
        "channel city ciudad click clicked clicks company consent count country department "
        "device domain empresa entreprise event events file files filiale firma flag foretag "
        "fournisseur geschaft has host is item items kampagne kampanj kampanja kanal kanava "
        "kategori kategoria kategorie kauppa kaupunki kielto land leverancier leverantor "
        "lieferant lupa maa magasin marca marke marketing marque merk merkki myymala "
        "newsletter open opened opens opt optin organisation organization osasto pais pays "
        "permission platform product producto products produit produkt proveedor rate region "
        "segment sent server share shop sku stad stadt status store supplier template tienda "
        "toimittaja tuote tuotteen typ type tyyppi unternehmen uses uutiskirje valid "
        "varumarke verified ville web winkel yritys achats commande commandes produits "
        "clients visites jours fois pedidos compras"
    )
)


def fold(text: str) -> str:
    """Lower-case ASCII: accents removed (``Sähköposti`` -> ``sahkoposti``), ß -> ss."""
    text = text.replace("ß", "ss").replace("ẞ", "SS")
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch)).lower()


def words(column: str) -> list[str]:
    """The words of a column name: ``E-Mail-Adresse`` -> ``[e, mail, adresse]``."""
    spaced = re.sub(r"(?<=[a-zà-ÿ0-9])(?=[A-ZÀ-Þ])", " ", column)  # FirstName, kundenTelefon
    return [w for w in re.split(r"[^a-z0-9]+", fold(spaced)) if w]


def personal_name(column: str) -> str | None:
    """What a column's name says it holds (``"a person's name"``), or None if nothing personal."""
    ws = words(column)
    if not ws or any(w in _QUALIFIERS for w in ws):
        return None
    # whole words, and runs of words written apart ("e mail", "first name", "date of birth")
    for size in (len(ws), 3, 2, 1):
        for i in range(len(ws) - size + 1):
            kind = _BY_WORD.get("".join(ws[i : i + size]))
            if kind:
                return kind
    for w in ws:
        for head, kind in _HEADS.items():
            if w.startswith(head) and len(w) > len(head):
                return kind
        for tail, kind in _TAILS.items():
            if w.endswith(tail) and len(w) > len(tail):
                if w[: -len(tail)].rstrip("s") in _QUALIFIERS or w[: -len(tail)] in _QUALIFIERS:
                    return None  # "tuotenimi", "Produktname", "categoryname"
                return kind
    return None


# ---- by content -------------------------------------------------------------------------------
_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_PHONE_CHARS = re.compile(r"\+?[\d\s().\-/]{6,24}")
_DATEISH = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}")
_DECIMAL = re.compile(r"[+-]?\d*[.,]\d+")
_NANP = re.compile(r"\(?[2-9]\d{2}\)?[\s.-]?\d{3}[\s.-]\d{4}")
_IBAN = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")
_HETU = re.compile(r"(\d{2})(\d{2})(\d{2})([-+A-FU-Y])(\d{3})([0-9A-Y])")
_HETU_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
_HETU_CENTURY = {"+": 1800, **dict.fromkeys("-UVWXY", 1900), **dict.fromkeys("ABCDEF", 2000)}
_PNR = re.compile(r"(\d{2})?(\d{2})(\d{2})(\d{2})[-+]?(\d{4})")
_CARD = re.compile(r"[2-6]\d{3}(?:[ -]?\d{4}){2}[ -]?\d{1,7}")
_U = "A-ZÀ-ÖØ-Þ"
_L = "a-zß-öø-ÿ"
_NAMEWORD = rf"[{_U}][{_L}]+(?:[-'’][{_U}]?[{_L}]+)?"
_PERSON = re.compile(
    rf"{_NAMEWORD}(?:\s+(?:(?:van|von|de|der|den|da|di|du|la|le|af|zu)\s+)*{_NAMEWORD}){{1,3}}"
)
_STREET_TAIL = re.compile(
    rf"(?:[{_U}][{_L}.'-]*\s+){{0,3}}[{_U}][{_L}-]*"
    r"(?:katu|tie|kuja|polku|väylä|raitti|rinne|kaari|puistikko|katu|gatan|gata|vägen|väg|"
    r"gränd|stigen|backe|torget|straße|strasse|str\.|weg|gasse|allee|platz|straat|laan|"
    r"gracht|plein|kade|singel|dijk)"
    r"\s+\d{1,4}\s?[A-Za-z]?\b.*"
)
_STREET_HEAD = re.compile(
    r"\d{1,5}\s?[A-Za-z]?,?\s+(?:(?:[A-ZÀ-Þ][a-zß-ÿ'.-]*|of|the)\s+){0,4}"
    r"(?:Street|St\.?|Road|Rd\.?|Avenue|Ave\.?|Lane|Ln\.?|Drive|Dr\.?|Boulevard|Blvd\.?|"
    r"Court|Ct\.?|Way|Place|Pl\.?|Terrace|Close|Crescent|Square|Sq\.?)\b.*"
    r"|\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?:rue|avenue|av\.|boulevard|bd|chemin|allée|place|"
    r"impasse|quai|route|cours)\s+\w.*"
)
_STREET_SOUTH = re.compile(
    r"(?:Calle|C/|Avenida|Avda\.?|Plaza|Paseo|Camino|Carrer|Rua|Via|Viale|Piazza|Corso)\s+"
    r"[^\d]{2,60}?,?\s+(?:n[º°o.]\s*)?\d{1,4}\b.*"
)


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _real_date(year: int, month: int, day: int) -> bool:
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return True


def is_email(v: str) -> bool:
    return "@" in v and _EMAIL.fullmatch(v) is not None


def is_phone(v: str) -> bool:
    """International (+358 40 ...), national with a trunk 0 (040 123 4567) or NANP numbers.

    Dates, decimals and bare digit runs without a + or a leading 0 (order ids, EANs) are not.
    """
    if not _PHONE_CHARS.fullmatch(v) or _DATEISH.fullmatch(v) or _DECIMAL.fullmatch(v):
        return False
    digits = re.sub(r"\D", "", v)
    if v.startswith("+"):
        return 8 <= len(digits) <= 15 and digits[0] != "0"
    if _NANP.fullmatch(v):
        return True
    if not digits.startswith("0") or digits[1:2] in ("", "0"):
        return False
    if digits == re.sub(r"\s", "", v):  # digits only: 0401234567
        return 9 <= len(digits) <= 11
    return 7 <= len(digits) <= 12


def is_iban(v: str) -> bool:
    s = v.replace(" ", "").upper()
    if not _IBAN.fullmatch(s):
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def is_henkilotunnus(v: str) -> bool:
    """Finnish personal identity code DDMMYYCZZZQ: date, century sign and check character."""
    m = _HETU.fullmatch(v.upper())
    if not m:
        return False
    dd, mm, yy, century, num, check = m.groups()
    if not _real_date(_HETU_CENTURY[century] + int(yy), int(mm), int(dd)):
        return False
    return _HETU_CHECK[int(dd + mm + yy + num) % 31] == check


def is_personnummer(v: str) -> bool:
    """Swedish personnummer (or samordningsnummer, day + 60): a real date and the Luhn digit."""
    m = _PNR.fullmatch(v)
    if not m:
        return False
    cc, yy, mm, dd, rest = m.groups()
    day = int(dd) - 60 if int(dd) > 60 else int(dd)
    year = int(cc + yy) if cc else 2000 + int(yy)
    if cc and cc not in ("18", "19", "20"):
        return False
    if not (_real_date(year, int(mm), day) or _real_date(year - 100, int(mm), day)):
        return False
    return _luhn(yy + mm + dd + rest)


def is_card(v: str) -> bool:
    if not _CARD.fullmatch(v):
        return False
    digits = re.sub(r"\D", "", v)
    return 13 <= len(digits) <= 19 and _luhn(digits)


def is_address(v: str) -> bool:
    return any(p.fullmatch(v) for p in (_STREET_TAIL, _STREET_HEAD, _STREET_SOUTH))


def is_person_name(v: str) -> bool:
    return _PERSON.fullmatch(v) is not None


#: Content checks, most specific first: (what the values are, test, mask style).
_CHECKS = (
    ("e-mail addresses", is_email, "email"),
    ("IBANs with a valid checksum", is_iban, "iban"),
    ("Finnish henkilötunnus codes with a valid check character", is_henkilotunnus, "code"),
    ("Swedish personnummer with a valid Luhn digit", is_personnummer, "code"),
    ("payment card numbers with a valid Luhn digit", is_card, "digits"),
    ("phone numbers", is_phone, "digits"),
    ("street addresses", is_address, "words"),
)


def mask(value: str, style: str = "words") -> str:
    """A value with its letters and digits hidden, enough left to see what kind it is."""
    if style == "email":
        local, _, domain = value.partition("@")
        host, _, tld = domain.rpartition(".")
        return f"{local[:1]}***@{host[:1]}***.{tld}"
    keep_head = 2 if style == "iban" else 0
    keep_tail = 2 if style in ("iban", "digits") else 0
    alnum = [i for i, ch in enumerate(value) if ch.isalnum()]
    shown = set(alnum[:keep_head]) | set(alnum[len(alnum) - keep_tail :] if keep_tail else [])
    if style == "words":  # initials: "S** M******"
        shown = {i for i in alnum if i == 0 or not value[i - 1].isalnum()}
        shown = {i for i in shown if not value[i].isdigit()}
    return "".join(ch if (i in shown or not ch.isalnum()) else "*" for i, ch in enumerate(value))


@dataclass(frozen=True)
class Finding:
    """A column that holds personal data, how we know, and a masked example."""

    column: str
    kind: str
    by: str  # "content" or "name"
    example: str = ""
    matched: int = 0
    sampled: int = 0

    def describe(self) -> str:
        if self.by == "name":
            return f"{self.column!r} (its name suggests {self.kind})"
        return (
            f"{self.column!r} ({self.kind}, {self.matched} of {self.sampled} sampled values, "
            f"e.g. {self.example})"
        )


def personal_content(column: str, values: Iterable[object]) -> Finding | None:
    """Whether a column's sampled values are personal data (None when they are not)."""
    texts = [str(v).strip() for v in values if v is not None]
    texts = [t for t in texts if t]
    if not texts:
        return None
    n = len(texts)
    distinct = list(dict.fromkeys(texts))
    for kind, test, style in _CHECKS:
        hits = [t for t in distinct if test(t)]
        if not hits:
            continue
        hit = set(hits)
        matched = sum(1 for t in texts if t in hit)
        if matched / n >= SHARE and not (style == "digits" and _mostly_gtin(hits)):
            return Finding(column, kind, "content", mask(hits[0], style), matched, n)
    if n >= NAME_MIN_VALUES and len(distinct) / n >= NAME_DISTINCT:
        hit = {t for t in distinct if is_person_name(t)}
        matched = sum(1 for t in texts if t in hit)
        if matched / n >= NAME_SHARE:
            example = mask(next(t for t in texts if t in hit))
            return Finding(column, "person names", "content", example, matched, n)
    return None


def _mostly_gtin(values: list[str]) -> bool:
    """Product barcodes (EAN/UPC/GTIN, their own check digit) are not phone or card numbers."""
    digits = [re.sub(r"\D", "", v) for v in values]
    ok = 0
    for d in digits:
        if len(d) in (8, 12, 13, 14):
            body, check = d[:-1], int(d[-1])
            weights = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
            ok += (10 - weights % 10) % 10 == check
    return ok >= 0.9 * len(digits)


def find_personal(
    sample: Mapping[str, list[object]], declared: Iterable[str] = ()
) -> list[Finding]:
    """Undeclared columns of a sample (column -> values) that hold personal data.

    Content is judged first (it says what was found and shows a masked example); a column
    whose content looks harmless is still reported when its name says it is personal.
    """
    skip = set(declared)
    found = []
    for column, values in sample.items():
        if column in skip:
            continue
        finding = personal_content(column, values)
        if finding is None:
            kind = personal_name(column)
            finding = Finding(column, kind, "name") if kind else None
        if finding is not None:
            found.append(finding)
    return found


def refusal(file: str, source: str, findings: list[Finding]) -> str:
    """The one-line refusal: the file, each column and what it holds, and the fix."""
    cols = "; ".join(f.describe() for f in findings)
    return (
        f"{file}: personal data in undeclared column(s) {cols}; declare each under "
        f"personal_data: in source {source!r} as drop or hash (or, if it is not personal, "
        "list it under not_personal:)"
    )
