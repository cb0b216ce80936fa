"""Who may know what: the library never reaches Prefect, one module owns the run folder.

These read the source (``ast``) as well as importing it, so an import hidden inside a function
is caught too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from personas import runs
from tests.conftest import REPO

LIBRARY = REPO / "personas"
MAX_MODULE_LINES = 600


def _modules(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path) -> set[str]:
    """Every module an import statement names, at any depth of the file."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_no_library_module_imports_prefect_or_the_pipelines() -> None:
    bad = {
        str(p.relative_to(REPO)): sorted(
            m for m in _imports(p) if m.split(".")[0] in ("prefect", "pipelines")
        )
        for p in _modules(LIBRARY)
    }
    assert not {k: v for k, v in bad.items() if v}


def test_every_library_module_imports_with_prefect_unimportable() -> None:
    """Import each personas module in a process where `import prefect` fails."""
    code = """
import importlib, pkgutil, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("prefect", "pipelines"):
            raise ImportError(f"{name} is blocked by the test")
sys.meta_path.insert(0, Block())
import personas
names = [m.name for m in pkgutil.walk_packages(personas.__path__, "personas.")]
for name in names:
    importlib.import_module(name)
assert not [m for m in sys.modules if m.split(".")[0] in ("prefect", "pipelines")]
print(len(names))
"""
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert int(res.stdout.split()[-1]) >= 30


RUN_FILES = {
    runs.RUN_INFO,
    runs.PROFILES,
    runs.ASSIGNMENTS,
    runs.METRICS,
    runs.CANDIDATES,
    runs.IDENTITY,
    runs.MIGRATION,
    runs.MAP,
    runs.MODEL,
    runs.REPORT,
    runs.STAGING,
}


@pytest.mark.parametrize("root", ["personas", "pipelines"])
def test_only_runs_names_the_files_of_a_run_folder(root: str) -> None:
    """The run folder has one owner: its file names are string constants of personas.runs."""
    found = []
    for p in _modules(REPO / root):
        if p == LIBRARY / "runs.py":
            continue
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in RUN_FILES:
                found.append(f"{p.relative_to(REPO)}:{node.lineno} {node.value!r}")
    assert not found


def test_no_module_is_longer_than_the_limit() -> None:
    """Long modules are split before they need banners to navigate (STYLE.md)."""
    long = {
        str(p.relative_to(REPO)): n
        for root in ("personas", "pipelines")
        for p in _modules(REPO / root)
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long


def test_no_private_name_is_imported_from_another_module() -> None:
    """A helper another module needs is made public in its owner, not imported as `_name`."""
    found = []
    for root in ("personas", "pipelines"):
        for p in _modules(REPO / root):
            for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    ("personas", "pipelines")
                ):
                    found += [
                        f"{p.relative_to(REPO)}: {node.module}.{a.name}"
                        for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")
                    ]
    assert not found
