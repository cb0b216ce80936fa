"""Project configuration: one validated object, defaults for everything, paths in one place.

``load_config("personas.yaml")`` reads an optional YAML file; flows unpack the object and pass
plain arguments to library functions (library code never reads configuration itself).
Unknown keys are errors with a did-you-mean, because a misspelt ``min_persona_size`` silently
ignored would publish personas smaller than the team agreed.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from personas.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeaturesConfig(_Strict):
    as_of: date | None = Field(
        default=None,
        description="features use data before this date (default: day after the last transaction)",
    )
    memory_limit: str | None = Field(default=None, description="DuckDB memory limit, e.g. 2GB")
    threads: int | None = None
    clv: bool = True
    clv_holdout: float = Field(
        default=0.25,
        ge=0,
        lt=1,
        description="share of the history (its end) held out to choose the CLV model; 0: none",
    )
    clv_clock: Literal["auto", "calendar", "trading"] = Field(
        default="auto",
        description="CLV time: calendar days, or days the business trades (auto: trading "
        "when a weekday is regularly closed)",
    )
    engine: Literal["duckdb", "spark"] = Field(
        default="duckdb",
        description="where the feature SQL runs: DuckDB on this machine, or Spark for data "
        "beyond one machine (needs the personas[spark] extra and Java 17); with spark, a "
        "refresh also scores every customer with the published model on Spark",
    )
    spark_master: str = Field(
        default="local[2]",
        description="Spark master URL of engine: spark, e.g. spark://host:7077 (ignored when "
        "a Spark session is already active, as under spark-submit)",
    )


class SegmentationConfig(_Strict):
    k: int | Literal["auto"] = "auto"
    k_range: tuple[int, int] = (3, 9)
    algorithms: tuple[Literal["kmeans", "gmm", "ward"], ...] = ("kmeans", "gmm", "ward")
    sample_size: int = Field(default=20_000, ge=100)
    n_bootstrap: int = Field(default=5, ge=0)
    min_orders: int = Field(default=2, ge=1)
    min_persona_size: int | None = Field(
        default=None, description="default: max(50, 1% of profiled customers)"
    )
    skew: Literal["log", "quantile", "none"] = "log"
    group_weights: Literal["balanced", "none"] | dict[str, float] = "none"
    include_groups: list[str] | None = None
    exclude_features: list[str] | None = None
    categorical: list[str] | None = Field(
        default=None, description="label features to one-hot encode, e.g. [age_band, region]"
    )
    max_missing: float = Field(default=0.8, ge=0, le=1)
    min_stability: float = Field(default=0.8, ge=0, le=1)
    tolerance: float = Field(default=0.02, ge=0)
    random_state: int = 0
    rule_depth: int = Field(default=4, ge=1, le=8)
    map_sample: int = Field(default=20_000, ge=100)
    likely_personas: bool = Field(
        default=True,
        description="give prospects and one-purchase customers a likely persona",
    )
    likely_threshold: float = Field(
        default=0.5, ge=0, le=1, description="below this probability a likely persona is undecided"
    )
    rule_sample: int = Field(
        default=50_000,
        ge=1000,
        description="profiled customers the rule trees are fitted on (counted on everyone)",
    )

    def segmenter_kwargs(self) -> dict[str, Any]:
        d = self.model_dump(
            exclude={
                "rule_depth",
                "map_sample",
                "likely_personas",
                "likely_threshold",
                "rule_sample",
            }
        )
        d["k_range"] = tuple(d["k_range"])
        d["algorithms"] = tuple(d["algorithms"])
        return d


class CampaignsConfig(_Strict):
    window_days: int = Field(
        default=14, ge=1, description="outcomes count within this many days from a contact"
    )
    response: Literal["visit", "conversion"] = Field(
        default="conversion",
        description="the outcome whose uplift decides 'raised' / 'lowered' in the playbook",
    )
    n_boot: int = Field(default=2000, ge=100, description="bootstrap resamples for spend")


class RefreshConfig(_Strict):
    """When a scheduled refresh refits instead of assigning (docs/drift.md)."""

    mode: Literal["auto", "assign", "refit"] = Field(
        default="auto", description="auto: refit only on evidence; assign; refit"
    )
    refit_every: int = Field(
        default=28, ge=1, description="refit when the model is this many days (as-of time) old"
    )
    psi_threshold: float = Field(default=0.25, gt=0, description="PSI of any model feature")
    low_confidence_threshold: float = Field(
        default=0.15, gt=0, le=1, description="share below the fit's 5th-percentile confidence"
    )
    share_shift_threshold: float = Field(
        default=0.10, gt=0, le=1, description="absolute change of a persona's share"
    )
    new_customers_threshold: float = Field(
        default=0.5, gt=0, le=1, description="share of customers the model never saw"
    )
    keep_runs: int = Field(
        default=30, ge=1, description="run folders kept (plus the published one and its model)"
    )

    def policy(self, mode: str | None = None) -> Any:
        from personas.drift import Policy, Thresholds

        return Policy(
            mode=mode or self.mode,  # type: ignore[arg-type]
            refit_every=self.refit_every,
            thresholds=Thresholds(
                psi=self.psi_threshold,
                low_confidence=self.low_confidence_threshold,
                share_shift=self.share_shift_threshold,
                new_customers=self.new_customers_threshold,
            ),
        )


class AlertsConfig(_Strict):
    webhook_url: str | None = Field(
        default=None, description="JSON POST {text: ...} on refit, drift and failure"
    )
    timeout: float = Field(default=10.0, gt=0, description="seconds before giving up a post")


class Config(_Strict):
    workspace: Path = Path("data")
    lake: Path | None = None
    mapping: str | None = None
    sources: list[str] = Field(default_factory=list)
    features: FeaturesConfig = FeaturesConfig()
    segmentation: SegmentationConfig = SegmentationConfig()
    campaigns: CampaignsConfig = CampaignsConfig()
    refresh: RefreshConfig = RefreshConfig()
    alerts: AlertsConfig = AlertsConfig()
    lock_timeout: float = Field(
        default=3600.0,
        ge=0,
        description="seconds a run waits for another run of the same workspace to finish",
    )

    @property
    def lake_dir(self) -> Path:
        return self.lake or self.workspace / "lake"

    @property
    def features_dir(self) -> Path:
        return self.workspace / "features"

    @property
    def runs_dir(self) -> Path:
        return self.workspace / "runs"

    @property
    def published_dir(self) -> Path:
        return self.workspace / "published"


def load_config(path: str | Path | None = None, **overrides: Any) -> Config:
    """Read ``path`` (YAML) if given, apply ``overrides`` (dotted keys allowed), validate."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"config file {p} not found")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: expected a mapping of settings")
        base = p.parent
        for key in ("workspace", "lake"):
            if key in data and data[key] is not None and not Path(data[key]).is_absolute():
                data[key] = str(base / data[key])
    for key, value in overrides.items():
        if value is None:
            continue
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        lines = [f"{path or 'configuration'}: invalid settings"]
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"])
            msg = (
                f"unknown setting {err['loc'][-1]!r}"
                if err["type"] == "extra_forbidden"
                else err["msg"]
            )
            lines.append(f"  - {loc}: {msg}")
        raise ConfigError("\n".join(lines)) from None
