"""Declarative source mappings: how a retailer's export lands on the canonical tables.

A mapping is a YAML file that a data team can read and edit without reading our code. It says,
per source: which files it covers, how to parse them, which columns are personal data, and for
each canonical table it feeds, where every canonical column comes from. Validation happens here,
once, with messages that point at the YAML key to change.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import os
import re
import zoneinfo
from fnmatch import fnmatch
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from personas import schema
from personas.errors import MappingError
from personas.ingest.yamlpath import inner_model, loc_text

FORMATS = ("csv", "tsv", "text", "parquet", "jsonl", "excel", "rda", "sql")
# Names people write for a format, and what to write instead (used in error messages).
_FORMAT_ALIASES = {
    "xlsx": "excel",
    "xls": "excel",
    "xlsm": "excel",
    "json": "jsonl",
    "ndjson": "jsonl",
    "txt": "text",
    "whitespace": "text",
    "dat": "text",
    "rdata": "rda",
    "rds": "rda",
    "pq": "parquet",
    "postgres": "sql",
    "postgresql": "sql",
    "database": "sql",
    "tab": "tsv",
}
# Files in an input folder that are never data (checksums, read-mes); extend with ignore:.
DEFAULT_IGNORE = (
    "*.md",
    "*.MD",
    "SHA256SUMS",
    "MD5SUMS",
    "*.sha256",
    "*.md5",
    "README*",
    "LICENSE*",
    ".*",
)
_EXT_FORMAT = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "text",
    ".dat": "text",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".xlsx": "excel",
    ".xlsm": "excel",
    ".rda": "rda",
    ".rdata": "rda",
    ".rds": "rda",
}


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
    """Where one canonical column comes from: a source column, a constant or a SQL expression."""

    column: str | None = None
    value: Any = None
    expr: str | None = None
    format: str | list[str] | None = Field(
        default=None, description="strptime format(s) for timestamps, tried in order"
    )
    timezone: str | None = Field(
        default=None, description="zone of naive timestamps, e.g. Europe/London (default UTC)"
    )
    nonexistent: Literal["shift_forward", "error"] = Field(
        default="shift_forward", description="a local time the clock skips (docs: clock changes)"
    )
    ambiguous: Literal["earliest", "latest", "error"] = Field(
        default="latest", description="a local time that occurs twice at a clock change"
    )
    values: dict[str, Any] | None = Field(
        default=None, description="recode map applied to the source value (others kept)"
    )
    pseudonymise: bool = Field(
        default=False, description="salted-hash the value (for ids that are personal data)"
    )

    @model_validator(mode="after")
    def _one_origin(self) -> ColumnSpec:
        given = [k for k in ("column", "value", "expr") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of column:, value: or expr: "
                f"(got {', '.join(given) if given else 'none'})"
            )
        return self

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, tz: str | None) -> str | None:
        """A misspelt zone is caught when the mapping loads, not when a file is read."""
        if tz is None or tz in _zones():
            return tz
        close = difflib.get_close_matches(tz, sorted(_zones()), n=1, cutoff=0.6)
        raise ValueError(
            f"unknown time zone {tz!r}"
            + (f"; did you mean {close[0]!r}?" if close else "")
            + " (IANA names such as Europe/Helsinki, or UTC)"
        )

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
        description="SQL condition on source columns; other rows are not part of this output",
    )
    columns: dict[str, ColumnSpec]
    rules: Rules = Rules()
    attributes: list[str | dict[str, str]] | Literal["rest"] | None = Field(
        default=None,
        description="customers only: source columns kept as a JSON object; an item "
        "{name: sql} stores an expression under a name (a feature name makes it a "
        "customer-level feature, see docs/features.md)",
    )

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
            f.name
            for f in schema.fields(self.table)
            if f.required
            and f.name not in self.columns
            and f.name not in derivable
            and f.name != "is_outlier"
        ]
        if (
            self.table == "transactions"
            and "amount" not in self.columns
            and "unit_price" not in self.columns
        ):
            missing.append("amount (or unit_price, to derive amount = quantity x unit_price)")
        if missing:
            raise ValueError(
                f"columns: must map the required {self.table} column(s) {', '.join(missing)}; "
                f"add e.g. `{missing[0].split(' ')[0]}: <source column>` under columns: "
                "(or {value: ...} / {expr: ...})"
            )
        if self.attributes is not None and self.table != "customers":
            raise ValueError("attributes: is only supported for the customers table")
        if isinstance(self.attributes, list):
            for item in self.attributes:
                if isinstance(item, dict) and len(item) != 1:
                    raise ValueError(
                        f"attributes: item {item!r} must be one column name or one "
                        "{name: sql expression} pair"
                    )
        return self


FormatName = Literal["csv", "tsv", "text", "parquet", "jsonl", "excel", "rda", "sql"]


class Lookup(_Strict):
    """A second file joined to every row of a source by a key (e.g. products for categories).

    Its columns become available to ``columns:``, ``expr:`` and ``where:`` as if they were
    source columns. It must hold at most one row per key, so the join never adds or loses rows.
    """

    name: str = Field(description="label used in messages and in the unmatched_<name> flag")
    file: str = Field(description="path; relative paths are taken from the input file's folder")
    format: FormatName | None = None
    object: str | None = Field(default=None, description="R object inside an .rda file")
    sheet: str | int | None = None
    encoding: str = "utf-8"
    delimiter: str | None = None
    key: str | dict[str, str] = Field(
        description="key column shared by both, or {source column: lookup column}"
    )
    columns: list[str] | dict[str, str] = Field(
        description="lookup columns to add, or {lookup column: name to use}"
    )

    def keys(self) -> tuple[str, str]:
        if isinstance(self.key, str):
            return self.key, self.key
        if len(self.key) != 1:
            raise ValueError("key: takes one key column ({source column: lookup column})")
        ((left, right),) = self.key.items()
        return left, right

    def renames(self) -> dict[str, str]:
        return (
            {c: c for c in self.columns} if isinstance(self.columns, list) else dict(self.columns)
        )

    @model_validator(mode="after")
    def _check(self) -> Lookup:
        self.keys()
        if not self.columns:
            raise ValueError("columns: must name at least one lookup column to add")
        return self


class DedupeKey(_Strict):
    """Rows of a source equal in these columns (canonical or source names) are duplicates."""

    key: list[str] = Field(min_length=1)


class Source(_Strict):
    """One kind of input file (or one SQL query) and how to read it."""

    name: str
    files: str | list[str] = "*"
    format: FormatName | None = None
    encoding: str = "utf-8"
    delimiter: str | None = Field(
        default=None, description="field separator; default , for csv and tab for tsv"
    )
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
        description="columns that look personal (by name or content) but are not",
    )
    allow_empty: bool = False
    max_line_bytes: int = 1_000_000
    max_bad_fraction: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="above this share of unparsable values in one column the file is refused",
    )
    lookups: list[Lookup] = Field(default_factory=list)
    dedupe: Literal["rows", "none"] | DedupeKey = Field(
        default="rows", description="what makes a duplicate: rows (whole rows), none, or key:"
    )
    outputs: list[Output]

    @model_validator(mode="before")
    @classmethod
    def _single_output(cls, data: Any) -> Any:
        if isinstance(data, dict) and "table" in data:
            data = dict(data)
            out = {
                k: data.pop(k)
                for k in ("table", "where", "columns", "rules", "attributes")
                if k in data
            }
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
        if self.delimiter is not None and len(self.delimiter.encode("utf-8")) != 1:
            raise ValueError(
                f"delimiter must be one single-byte character, got {self.delimiter!r} "
                "(for runs of blanks use format: text)"
            )
        if self.format == "sql" and self.lookups:
            raise ValueError("lookups: are not supported for sql sources; join in the query")
        names = [lk.name for lk in self.lookups]
        if len(set(names)) != len(names):
            raise ValueError("lookups: each lookup needs a different name:")
        return self

    def declared_personal(self) -> set[str]:
        """Source columns declared personal: under personal_data:, or pseudonymised ids."""
        return set(self.personal_data) | {
            c.column
            for o in self.outputs
            for c in o.columns.values()
            if c.pseudonymise and c.column is not None
        }

    def sep(self, path: str | Path | None = None) -> str:
        """The field delimiter: as set, else tab for tsv and comma otherwise."""
        if self.delimiter is not None:
            return self.delimiter
        return "\t" if self.format_for(path) == "tsv" else ","

    def matches(self, path: str | Path) -> bool:
        name = Path(path).name
        pats = [self.files] if isinstance(self.files, str) else self.files
        return any(fnmatch(name, p) or fnmatch(str(path), p) for p in pats)

    def format_for(self, path: str | Path | None) -> str:
        """The declared format, else the one the file name suggests."""
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
    ignore: list[str] = Field(
        default_factory=list,
        description="file name patterns in input folders that are not data (added to "
        "the defaults: *.md, SHA256SUMS, README*, ...)",
    )
    sources: list[Source]
    path: str | None = Field(default=None, exclude=True)
    text_hash: str = Field(default="", exclude=True)

    def ignored(self, path: str | Path) -> bool:
        """Whether a file is not data (matches ignore: or the defaults, or is a lookup file)."""
        name = Path(path).name
        lookups = {Path(lk.file).name for s in self.sources for lk in s.lookups}
        return name in lookups or any(fnmatch(name, p) for p in (*DEFAULT_IGNORE, *self.ignore))

    def source_for(self, path: str | Path) -> Source:
        for s in self.sources:
            if s.format != "sql" and s.matches(path):
                return s
        pats = "; ".join(f"{s.name}: {s.files}" for s in self.sources)
        raise MappingError(
            f"{Path(path).name}: no source in mapping {self.name!r} matches this file "
            f"(patterns: {pats}); add its name pattern to a source's files:, or to ignore: if "
            "it is not data"
        )

    def pii_key(self) -> str | None:
        return os.environ.get(self.pii_key_env)

    def needs_pii_key(self) -> bool:
        return any(v == "hash" for s in self.sources for v in s.personal_data.values()) or any(
            c.pseudonymise for s in self.sources for o in s.outputs for c in o.columns.values()
        )


def _format_error(e: ValidationError, where: str, data: Any = None) -> str:
    """One line per problem, each naming the YAML key to change and, where it can, the fix."""
    lines = [f"{where}: invalid mapping"]
    for err in e.errors():
        loc = [
            p
            for p in err["loc"]
            if not str(p).startswith(("function-", "literal["))
            and str(p) not in ("str", "list[str]", "dict[str,str]", "int", "float", "bool")
        ]
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            key = str(loc[-1])
            allowed = _allowed_keys(loc[:-1])
            close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
            msg = f"unknown key {key!r}" + (f"; did you mean {close[0]!r}?" if close else "")
            if allowed:
                msg += f" (allowed here: {', '.join(sorted(allowed))})"
        elif err["type"] == "literal_error" and loc and loc[-1] == "format":
            got = str(err.get("input"))
            alias = _FORMAT_ALIASES.get(got.lower().lstrip("."))
            close = alias or next(iter(difflib.get_close_matches(got, FORMATS, n=1)), None)
            msg = f"{got!r} is not a format we read; use one of {', '.join(FORMATS)}" + (
                f" (did you mean {close!r}?)" if close else ""
            )
        elif err["type"] == "missing":
            msg = f"required key {loc[-1]!r} is missing"
        lines.append(f"  - {loc_text(loc, data)}: {msg}")
    return "\n".join(lines)


def _allowed_keys(loc: list[Any]) -> set[str]:
    """Keys a YAML mapping may hold at ``loc`` (for did-you-mean suggestions)."""
    model: Any = Mapping
    for p in loc:
        if isinstance(p, int):
            continue
        if model is Output and p in ("columns",):
            model = ("columns", Output)
            continue
        if isinstance(model, tuple):  # inside columns: -> a canonical column name
            model = ColumnSpec
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return set()
        f = model.model_fields.get(str(p))
        if f is None:
            return set()
        model = inner_model(f.annotation)
    if isinstance(model, tuple):
        return {fl.name for fl in schema.fields("transactions")} | {
            fl.name for t in schema.TABLES for fl in schema.fields(t)
        }
    if isinstance(model, type) and issubclass(model, BaseModel):
        keys = set(model.model_fields) - {"path", "text_hash"}
        if model is Source:
            keys |= {"table", "where", "columns", "rules", "attributes"}
        return keys
    return set()


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping YAML; a bare name loads a shipped mapping (e.g. ``demo``)."""
    p = Path(path)
    if not p.exists() and p.suffix == "" and p.name in shipped_mappings():
        p = Path(str(resources.files("personas.ingest.mappings") / f"{p.name}.yaml"))
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
    _check_keys(data, p)
    try:
        m = Mapping.model_validate(data)
    except ValidationError as e:
        raise MappingError(_format_error(e, str(p), data)) from None
    return m.model_copy(
        update={"path": str(p), "text_hash": hashlib.sha256(text.encode()).hexdigest()[:16]}
    )


def _check_keys(node: Any, p: Path, where: str = "") -> None:
    """YAML 1.1 reads keys like on/yes/no as booleans: say so instead of a puzzling error."""
    if isinstance(node, dict):
        for k, v in node.items():
            if not isinstance(k, str):
                raise MappingError(
                    f"{p}: {where or '(top level)'}: key {k!r} is not text (YAML reads on, off, "
                    "yes, no, true and false as booleans and bare numbers as numbers); quote "
                    f'it, e.g. "{str(k).lower() if isinstance(k, bool) else k}":'
                )
            _check_keys(v, p, f"{where} > {k}" if where else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_keys(v, p, f"{where}[{i}]")


def shipped_mappings() -> list[str]:
    """Names of the mappings shipped with the package (for the real datasets and the demo)."""
    return sorted(
        Path(str(r.name)).stem
        for r in resources.files("personas.ingest.mappings").iterdir()
        if str(r.name).endswith(".yaml")
    )
