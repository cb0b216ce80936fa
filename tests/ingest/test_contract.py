"""The data contract and the mapping docs never drift from the code."""

from __future__ import annotations

import typing

import pyarrow as pa
import pytest
from pydantic import BaseModel

from personas import schema
from personas.ingest.mapping import Mapping
from tests.conftest import REPO


def test_data_contract_doc_is_the_rendered_schema() -> None:
    doc = (REPO / "docs" / "data-contract.md").read_text(encoding="utf-8")
    assert doc == schema.render_markdown(), (
        "docs/data-contract.md is stale: run "
        "`uv run python -m personas.schema > docs/data-contract.md`"
    )


def test_render_lists_every_column_rule_and_flag() -> None:
    md = schema.render_markdown()
    for table, fields in [*schema.TABLES.items(), ("quarantine", schema.QUARANTINE)]:
        assert f"`{table}`" in md
        for f in fields:
            assert f"| `{f.name}` |" in md, (table, f.name)
    for f in schema.LINEAGE:
        assert f"| `{f.name}` |" in md
    for name in [*schema.RULES, *schema.FLAGS]:
        assert f"| `{name}` |" in md
    assert "| `amount` | DOUBLE | yes | currency units |" in md


@pytest.mark.parametrize("table", list(schema.TABLES))
def test_arrow_schema_carries_meaning_and_lineage(table: str) -> None:
    s = schema.arrow_schema(table)
    assert s.metadata[b"schema_version"] == str(schema.SCHEMA_VERSION).encode()
    for f in schema.fields(table):
        field = s.field(f.name)
        assert field.metadata[b"meaning"] == f.meaning.encode()
        assert field.nullable == (not f.required)
    assert [f.name for f in schema.LINEAGE] == s.names[-4:]
    assert s.field("ingested_at").type == pa.timestamp("us", tz="UTC")


def _keys(model: type[BaseModel], seen: set[type]) -> set[str]:
    if model in seen:
        return set()
    seen.add(model)
    out = set(model.model_fields) - {"path", "text_hash"}
    for f in model.model_fields.values():
        for arg in [f.annotation, *typing.get_args(f.annotation)]:
            for inner in [arg, *typing.get_args(arg)]:
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    out |= _keys(inner, seen)
    return out


def test_ingestion_doc_mentions_every_mapping_key() -> None:
    doc = (REPO / "docs" / "ingestion.md").read_text(encoding="utf-8")
    keys = _keys(Mapping, set())
    assert {"files", "lookups", "order_id_prefix", "max_future_days", "pseudonymise"} <= keys
    missing = sorted(k for k in keys if f"{k}:" not in doc and f"`{k}`" not in doc)
    assert not missing, f"docs/ingestion.md does not document mapping key(s) {missing}"
