"""Declarative source mappings: how a retailer's export lands on the canonical tables.

A mapping is a YAML file that a data team can read and edit without reading our code. It says,
per source: which files it covers, how to parse them, which columns are personal data, and for
each canonical table it feeds, where every canonical column comes from. Validation happens here,
once, with messages that point at the YAML key to change.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from fnmatch import fnmatch
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from personas import schema
from personas.errors import MappingError

FORMATS = ("csv", "text", "parquet", "jsonl", "excel", "rda", "sql")
_EXT_FORMAT = {
    ".csv": "csv", ".tsv": "csv", ".txt": "text", ".dat": "text", ".parquet": "parquet",
    ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".xlsx": "excel",
    ".xlsm": "excel", ".rda": "rda", ".rdata": "rda", ".rds": "rda",
}
# Column names that almost always hold personal data: a mapping must say what to do with them.
PII_NAME = re.compile(
    r"(^|_|\b)(e[-_ ]?mail|phone|mobile|tel(ephone)?|full[-_ ]?name|first[-_ ]?name|"
    r"last[-_ ]?name|surname|customer[-_ ]?name|name|address|street|postcode|zip|ssn|iban|"
    r"birth[-_ ]?date|dob)($|_|\b)",
    re.IGNORECASE,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
    """Where one canonical column comes from: a source column, a constant or a SQL expression."""

    column: str | None = None
    value: Any = None
    expr: str | None = None
    format: str | list[str] | None = Field(
        default=None, description="strptime format(s) for timestamps, tried in order")
    timezone: str | None = Field(
        default=None, description="zone of naive timestamps, e.g. Europe/London (default UTC)")
    values: dict[str, Any] | None = Field(
        default=None, description="recode map applied to the source value (others kept)")
    pseudonymise: bool = Field(
        default=False, description="salted-hash the value (for ids that are personal data)")

    @model_validator(mode="after")
    def _one_origin(self) -> ColumnSpec:
        given = [k for k in ("column", "value", "expr") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of column:, value: or expr: "
                f"(got {', '.join(given) if given else 'none'})"
            )
        return self

    def formats(self) -> list[str]:
        if self.format is None:
            return []
        return [self.format] if isinstance(self.format, str) else list(self.format)


class CancellationRule(_Strict):
    order_id_prefix: str | None = "C"


class NonProductRule(_Strict):
    product_ids: list[str] = Field(default_factory=list)
    product_id_pattern: str | None = None
    categories: list[str] = Field(default_factory=list)


class DateRule(_Strict):
    min: str = "1990-01-01"
    max_future_days: int = 1


class OutlierRule(_Strict):
    quantity_abs_max: float = 10_000
    amount_abs_max: float = 100_000


class Rules(_Strict):
    """Cleaning rules of one output; each is named in quarantine and counted in the manifest."""

    cancellation: CancellationRule | None = None
    non_product: NonProductRule | None = None
    zero_price: bool = True
    negative_price: bool = True
    impossible_date: DateRule = DateRule()
    extreme_outlier: OutlierRule | None = OutlierRule()
    score_range: bool = True


class Output(_Strict):
    """One canonical table fed by a source."""

    table: Literal["transactions", "customers", "events", "feedback"]
    where: str | None = Field(
        default=None,
        description="SQL condition on source columns; other rows are not part of this output")
    columns: dict[str, ColumnSpec]
    rules: Rules = Rules()
    attributes: list[str] | Literal["rest"] | None = Field(
        default=None, description="customers only: source columns kept as a JSON object")

    @field_validator("columns", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        out = {}
        for k, spec in v.items():
            if isinstance(spec, str):
                out[k] = {"column": spec}
            elif isinstance(spec, int | float | bool) or spec is None:
                out[k] = {"value": spec}
            else:
                out[k] = spec
        return out

    @model_validator(mode="after")
    def _canonical(self) -> Output:
        known = {f.name for f in schema.fields(self.table)} - {"is_outlier"}
        for name in self.columns:
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(
                    f"{name!r} is not a column of the canonical {self.table} table{hint} "
                    f"(columns: {', '.join(sorted(known))})"
                )
        derivable = {"amount", "quantity", "order_id"} if self.table == "transactions" else set()
        if self.table == "feedback":
            derivable = {"scale_max"}
        missing = [
            f.name for f in schema.fields(self.table)
            if f.required and f.name not in self.columns and f.name not in derivable
            and f.name != "is_outlier"
        ]
        if (self.table == "transactions" and "amount" not in self.columns
                and "unit_price" not in self.columns):
            missing.append("amount (or unit_price, to derive amount = quantity x unit_price)")
        if missing:
            raise ValueError(
                f"the {self.table} output must map the required column(s) {', '.join(missing)}"
            )
        if self.attributes is not None and self.table != "customers":
            raise ValueError("attributes: is only supported for the customers table")
        return self


class Source(_Strict):
    """One kind of input file (or one SQL query) and how to read it."""

    name: str
    files: str | list[str] = "*"
    format: Literal["csv", "text", "parquet", "jsonl", "excel", "rda", "sql"] | None = None
    encoding: str = "utf-8"
    delimiter: str = ","
    header: bool = True
    column_names: list[str] | None = None
    quote: str = '"'
    decimal: str = "."
    thousands: str | None = None
    null_values: list[str] = Field(default_factory=lambda: ["", "NA", "NULL", "null", "NaN"])
    sheet: str | int | None = None
    object: str | None = None
    url: str | None = None
    query: str | None = None
    personal_data: dict[str, Literal["drop", "hash"]] = Field(default_factory=dict)
    not_personal: list[str] = Field(
        default_factory=list,
        description="columns whose names look personal but are not (e.g. product_name)")
    allow_empty: bool = False
    max_line_bytes: int = 1_000_000
    max_bad_fraction: float = Field(
        default=0.5, ge=0, le=1,
        description="above this share of unparsable values in one column the file is refused")
    outputs: list[Output]

    @model_validator(mode="before")
    @classmethod
    def _single_output(cls, data: Any) -> Any:
        if isinstance(data, dict) and "table" in data:
            data = dict(data)
            out = {k: data.pop(k) for k in ("table", "where", "columns", "rules", "attributes")
                   if k in data}
            if "outputs" in data:
                raise ValueError("give either table:/columns: or outputs:, not both")
            data["outputs"] = [out]
        return data

    @model_validator(mode="after")
    def _check(self) -> Source:
        if self.format == "sql" and not (self.url and self.query):
            raise ValueError("a sql source needs url: (SQLAlchemy URL) and query:")
        if not self.outputs:
            raise ValueError("a source needs at least one output table")
        if len(self.delimiter) != 1 and self.format not in ("text",):
            raise ValueError(f"delimiter must be one character, got {self.delimiter!r}")
        return self

    def matches(self, path: str | Path) -> bool:
        name = Path(path).name
        pats = [self.files] if isinstance(self.files, str) else self.files
        return any(fnmatch(name, p) or fnmatch(str(path), p) for p in pats)

    def format_for(self, path: str | Path | None) -> str:
        if self.format:
            return self.format
        if path is None:
            raise MappingError(f"source {self.name!r}: set format: (one of {', '.join(FORMATS)})")
        suffixes = [s.lower() for s in Path(path).suffixes if s.lower() not in (".gz", ".gzip")]
        fmt = _EXT_FORMAT.get(suffixes[-1] if suffixes else "")
        if fmt is None:
            raise MappingError(
                f"{Path(path).name}: cannot tell the format from the file name; "
                f"set format: in source {self.name!r} (one of {', '.join(FORMATS)})"
            )
        return fmt

    def resolved_url(self) -> str:
        """The SQL URL with ``${VAR}`` replaced from the environment (keeps secrets out of YAML)."""
        assert self.url is not None

        def sub(m: re.Match[str]) -> str:
            var = m.group(1)
            if var not in os.environ:
                raise MappingError(f"source {self.name!r}: url needs environment variable {var}")
            return os.environ[var]

        return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", sub, self.url)


class Mapping(_Strict):
    """A whole mapping file."""

    name: str
    description: str = ""
    version: int = 1
    pii_key_env: str = "PERSONAS_PII_KEY"
    sources: list[Source]
    path: str | None = Field(default=None, exclude=True)
    text_hash: str = Field(default="", exclude=True)

    def source_for(self, path: str | Path) -> Source:
        for s in self.sources:
            if s.format != "sql" and s.matches(path):
                return s
        pats = "; ".join(f"{s.name}: {s.files}" for s in self.sources)
        raise MappingError(
            f"{Path(path).name}: no source in mapping {self.name!r} matches this file "
            f"(patterns: {pats}); add its name pattern to a source's files:"
        )

    def pii_key(self) -> str | None:
        return os.environ.get(self.pii_key_env)

    def needs_pii_key(self) -> bool:
        return any(
            v == "hash" for s in self.sources for v in s.personal_data.values()
        ) or any(
            c.pseudonymise for s in self.sources for o in s.outputs for c in o.columns.values()
        )


def _format_error(e: ValidationError, where: str) -> str:
    lines = [f"{where}: invalid mapping"]
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {err['loc'][-1]!r}"
        lines.append(f"  - {loc}: {msg}")
    return "\n".join(lines)


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping YAML; a bare name loads a shipped mapping (e.g. ``demo``)."""
    p = Path(path)
    if not p.exists() and p.suffix == "" and p.name in shipped_mappings():
        p = Path(str(resources.files("personas.mappings") / f"{p.name}.yaml"))
    if not p.exists():
        raise MappingError(
            f"mapping file {str(path)!r} not found; shipped mappings: "
            f"{', '.join(shipped_mappings())}"
        )
    text = p.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise MappingError(f"{p}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise MappingError(f"{p}: expected a mapping with name: and sources:, got {type(data)}")
    try:
        m = Mapping.model_validate(data)
    except ValidationError as e:
        raise MappingError(_format_error(e, str(p))) from None
    return m.model_copy(
        update={"path": str(p), "text_hash": hashlib.sha256(text.encode()).hexdigest()[:16]}
    )


def shipped_mappings() -> list[str]:
    """Names of the mappings shipped with the package (for the real datasets and the demo)."""
    return sorted(
        Path(str(r.name)).stem
        for r in resources.files("personas.mappings").iterdir()
        if str(r.name).endswith(".yaml")
    )
