"""Package faces load their modules only when a name is used."""

from __future__ import annotations

import subprocess
import sys

import pytest

from personas.lazy import attach
from tests.conftest import REPO


def test_attach_resolves_names_and_refuses_unknown_ones() -> None:
    getattr_, dir_, all_ = attach("personas", {"quote": "sqltext"}, submodules=("errors",))
    assert getattr_("quote")("a'b") == "a''b"
    assert getattr_("errors").__name__ == "personas.errors"
    assert all_ == ["quote"] and dir_() == ["errors", "quote"]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        getattr_("nope")


def test_importing_the_stage_packages_loads_no_engine() -> None:
    code = (
        "import sys, personas, personas.ingest, personas.segment, personas.profile, "
        "personas.publish, personas.synthetic\n"
        "print(sorted(m for m in ('duckdb', 'sklearn', 'plotly', 'scipy', 'pandas') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
