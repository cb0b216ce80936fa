"""Published JSON Schemas of the machine outputs, and their validation.

``profiles.schema.json`` (JSON Schema draft 2020-12) is the contract between discovery and
every consumer of ``profiles.json``: the report, the cards, the audiences and whatever tool a
customer points at the file. Publication refuses a profile that breaks it, so a change in
discovery can never silently publish a report built on missing fields.

JSON Schema cannot compare two fields of one document, so :func:`validate_profiles` adds the
cross-field checks the privacy promise rests on: no persona below ``min_persona_size``, unique
ids and slugs, sizes that add up.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

from personas.errors import ProfilesError

PROFILES_SCHEMA = "profiles.schema.json"


@cache
def profiles_schema() -> dict[str, Any]:
    """The profiles JSON Schema as a dict (read once from the package)."""
    text = resources.files(__package__).joinpath(PROFILES_SCHEMA).read_text(encoding="utf-8")
    return json.loads(text)


def profiles_errors(profiles: Any) -> list[str]:
    """Every problem found, as readable ``path: message`` lines (empty when valid)."""
    validator = Draft202012Validator(profiles_schema())
    errors = [
        f"{_path(e.absolute_path)}: {e.message}"
        for e in sorted(validator.iter_errors(profiles), key=lambda e: list(e.absolute_path))
    ]
    if errors:
        return errors
    return _cross_field(profiles)


def validate_profiles(profiles: Any) -> None:
    """Raise :class:`ProfilesError` listing every problem when the profiles are invalid."""
    errors = profiles_errors(profiles)
    if errors:
        shown = "\n  ".join(errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise ProfilesError(
            f"profiles.json is invalid ({len(errors)} problem(s)):\n  {shown}{more}"
        )


def _cross_field(p: dict[str, Any]) -> list[str]:
    out: list[str] = []
    min_size = p["min_persona_size"]
    n = p["population"]["customers"]
    ids: set[str] = set()
    slugs: set[str] = set()
    total = 0
    for i, persona in enumerate(p["personas"]):
        where = f"personas/{i} ({persona['id']})"
        if persona["size"] < min_size:
            out.append(f"{where}: size {persona['size']} is below min_persona_size {min_size}")
        if persona["id"] in ids:
            out.append(f"{where}: duplicate persona id")
        if persona["slug"] in slugs:
            out.append(f"{where}: duplicate slug {persona['slug']!r}")
        ids.add(persona["id"])
        slugs.add(persona["slug"])
        total += persona["size"]
        for j, t in enumerate(persona.get("tested_messages", [])):
            if t["n_treatment"] + t["n_control"] < min_size:
                out.append(
                    f"{where}/tested_messages/{j}: a test of {t['n_treatment'] + t['n_control']} "
                    f"customers is below min_persona_size {min_size}"
                )
    for i, g in enumerate(p["groups"]):
        if g.get("published") and g.get("size", 0) < min_size:
            out.append(
                f"groups/{i} ({g['id']}): published with size {g.get('size')} below "
                f"min_persona_size {min_size}"
            )
        if g["id"] in ids:
            out.append(f"groups/{i}: id {g['id']!r} is also a persona id")
        ids.add(g["id"])
        total += g.get("size", 0)
    if total > n:
        out.append(
            f"population: personas and groups hold {total:,} customers, more than the "
            f"{n:,} in the population"
        )
    if p["population"]["profiled"] > n:
        out.append("population: more profiled customers than customers")
    return out


def _path(parts: Any) -> str:
    return "/".join(str(x) for x in parts) or "(root)"
