"""``personas.features`` is cheap to import: reading the catalogue loads no engine or model.

Plots, reports and explanations read what a feature means; if that pulled in DuckDB, Arrow,
scipy or scikit-learn (or the lake), every CLI command and notebook would pay for them. Each
check runs in a fresh interpreter, since this test session has imported them all already.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("duckdb", "pyarrow", "scipy", "sklearn", "personas.lake")


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=120
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    "code",
    [
        "import personas.features\n"
        "assert personas.features.lookup('recency_days').unit == 'days'\n"
        "assert personas.features.lookup('value_economic').group == 'value'\n"
        "assert personas.features.label('cat_share__books') == 'Share of spend: books'",
        "import personas.features.catalog as c\n"
        "assert c.display_names({'categories': ['Home & Garden']}) == "
        "{'cat_share__home_garden': 'Home & Garden'}",
    ],
    ids=["face", "catalog"],
)
def test_reading_the_catalogue_loads_no_heavy_module(code: str) -> None:
    loaded = _loaded_after(code)
    heavy = sorted(m for m in loaded for h in HEAVY if m == h or m.startswith(h + "."))
    assert not heavy, f"reading the catalogue imported {heavy}"


def test_the_probe_sees_a_heavy_import() -> None:
    """The check above would notice: the build module does load DuckDB."""
    assert "duckdb" in _loaded_after("import personas.features.build")
