"""The run folder: its file names, reading it back, writing it, its status and its model.

A run is one discovery (``runs/<run_id>/``) and what publishing adds to it. This module is the
only one that knows the folder's file names; discovery hands it a fitted result
(:func:`write_run`), publishing and notebooks read a :class:`Run` (:func:`load_run`), and both
change the status through :func:`set_status`. Files are written to a temporary name and renamed,
so a reader never sees half a file.
"""

from __future__ import annotations

import io
import json
import os
import socket
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from personas.errors import RunError

if TYPE_CHECKING:
    import pandas as pd

    from personas.segment.likely import LikelyPersonaClassifier
    from personas.segment.segmenter import PersonaSegmenter

RUN_INFO = "run.json"
PROFILES = "profiles.json"
ASSIGNMENTS = "assignments.parquet"
METRICS = "metrics.json"
CANDIDATES = "candidates.csv"
IDENTITY = "identity.json"
MIGRATION = "migration.parquet"
MAP = "map.parquet"
MODEL = "model.skops"
LIKELY_MODEL = "likely.skops"  # likely personas of prospects and one-purchase customers
UPLIFT = "uplift.json"  # campaign response and uplift per persona (personas.campaigns)
REFERENCE = "reference.parquet"  # the model's reference sample of the features (drift)
DRIFT = "drift.json"  # drift against the model and the refresh decision
REPORT = "report.html"
CARDS = "cards"
AUDIENCES = "audiences"
PROSPECT_AUDIENCES = "prospect_audiences"  # look-alike prospects and new customers per persona
STAGING = "_publishing"  # publication's outputs before the safety scan passes
LATEST = "latest"  # published_root/latest -> the published run folder

# Types a model file may hold besides sklearn/numpy/scipy ones, by their current names.
TRUSTED = (
    "personas.segment.segmenter.PersonaSegmenter",
    "personas.segment.likely.LikelyPersonaClassifier",
    # HistGradientBoosting's preprocessor wraps sklearn's check_array in a partial; skops
    # checks the wrapped function's own type separately, so the partial adds no risk
    "functools.partial",
    "personas.segment.selection.Fitted",
    "personas.segment.preprocess.GroupWeights",
    "personas.segment.preprocess.signed_log1p",
    "personas.segment.preprocess.soft_clip",
)
# Names of the same types in model files written before the stage subpackages (0.1 layout).
RENAMED = {
    "personas.segment": "personas.segment.segmenter",
    "personas.selection": "personas.segment.selection",
    "personas.preprocess": "personas.segment.preprocess",
}


@dataclass
class Run:
    """A run folder read back: its status, profiles, identity and metrics.

    The tables (assignments, map, migration) are read on first use: the report needs the map
    but not every assignment, the audiences the reverse.
    """

    path: Path
    info: dict[str, Any]
    profiles: dict[str, Any]
    identity: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return str(self.info.get("run_id") or self.path.name)

    @property
    def status(self) -> str:
        return str(self.info.get("status", "discovered"))

    @cached_property
    def assignments(self) -> pd.DataFrame:
        """customer_id, persona_id, persona_name, confidence, ... for every customer."""
        import pandas as pd

        return pd.read_parquet(self.path / ASSIGNMENTS)

    @cached_property
    def map(self) -> pd.DataFrame | None:
        """The 2-D persona map of a sample of customers, or None for a run without one."""
        return _optional_parquet(self.path / MAP)

    @cached_property
    def migration(self) -> pd.DataFrame | None:
        """Customers moved between the previous publication's personas and this run's."""
        return _optional_parquet(self.path / MIGRATION)

    @cached_property
    def uplift(self) -> dict[str, Any] | None:
        """Campaign response and uplift per persona, or None when no campaign was measured."""
        p = self.path / UPLIFT
        return read_json(p) if p.exists() else None

    @property
    def personas(self) -> pd.DataFrame:
        """One row per persona: id, name, size, share, description."""
        import pandas as pd

        keys = ("id", "name", "size", "share", "description")
        return pd.DataFrame([{k: p[k] for k in keys} for p in self.profiles["personas"]]).set_index(
            "id"
        )

    def model(self) -> PersonaSegmenter:
        """The fitted segmenter of this run."""
        return load_model(self.path / MODEL)

    def likely_model(self) -> LikelyPersonaClassifier | None:
        """The likely-persona classifier of this run, or None (a run without one)."""
        path = self.path / LIKELY_MODEL
        return load_model(path) if path.exists() else None

    @cached_property
    def drift(self) -> dict[str, Any]:
        """The refresh decision and drift figures ({} for a run made before refresh modes)."""
        p = self.path / DRIFT
        return read_json(p) if p.exists() else {}

    @cached_property
    def reference(self) -> pd.DataFrame | None:
        """The model's reference sample of the features (index: customer_id), if kept."""
        df = _optional_parquet(self.path / REFERENCE)
        return df.set_index("customer_id") if df is not None else None


@dataclass
class RunOutput:
    """Everything discovery writes into a run folder (see :func:`write_run`)."""

    profiles_json: str
    assignments: pd.DataFrame
    candidates: pd.DataFrame
    identity: dict[str, Any]
    map: pd.DataFrame
    metrics: dict[str, Any]
    model: PersonaSegmenter | None
    migration: pd.DataFrame | None = None
    likely: LikelyPersonaClassifier | None = None


# ---- reading --------------------------------------------------------------------------------
def is_run(path: str | Path) -> bool:
    return (Path(path) / PROFILES).exists()


def load_run(path: str | Path) -> Run:
    """Read a run folder; :class:`~personas.errors.RunError` if it is not one."""
    p = Path(path).resolve()
    if not is_run(p):
        raise RunError(
            f"{p} is not a run folder ({PROFILES} is missing); runs are made by "
            "`personas discover` or `personas refresh`"
        )
    info = read_json(p / RUN_INFO) if (p / RUN_INFO).exists() else {}
    info.setdefault("run_id", p.name)
    return Run(
        p,
        info,
        read_json(p / PROFILES),
        read_json(p / IDENTITY) if (p / IDENTITY).exists() else {},
        read_json(p / METRICS) if (p / METRICS).exists() else {},
    )


def published_run(published_root: str | Path) -> Path | None:
    """The run folder ``published_root/latest`` points at, or None before any publication."""
    latest = Path(published_root) / LATEST
    return latest.resolve() if latest.exists() else None


def latest_run(workspace: str | Path = "data") -> Run:
    """The published run of a workspace (``<workspace>/published/latest``)."""
    root = Path(workspace) / "published"
    path = published_run(root)
    if path is None:
        raise RunError(f"nothing published under {root}; run `personas refresh`")
    return load_run(path)


def newest_run(runs_root: str | Path) -> Path:
    """The most recent run folder (run ids sort by time)."""
    root = Path(runs_root)
    runs = sorted(p for p in root.iterdir() if is_run(p)) if root.exists() else []
    if not runs:
        raise RunError(f"no runs under {root}; run `personas discover` first")
    return runs[-1]


# ---- writing --------------------------------------------------------------------------------
def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def create_run(runs_root: str | Path, run_id: str | None = None, **info: Any) -> Path:
    """Make a new run folder with a ``run.json`` saying "running".

    Without ``run_id`` the id is the UTC second, and runs started within the same second get
    ``-02``, ``-03``, ... (the folder is claimed with an atomic ``mkdir``, so two processes
    never share one). An explicit ``run_id`` that exists is an error.
    """
    root = Path(runs_root)
    root.mkdir(parents=True, exist_ok=True)
    mark_abandoned(root)
    if run_id is not None:
        run_dir = root / run_id
        try:
            run_dir.mkdir()
        except FileExistsError:
            raise FileExistsError(
                f"run folder {run_dir} exists already; pick another run id"
            ) from None
    else:
        base = new_run_id()
        for n in range(1, 1000):
            run_id = base if n == 1 else f"{base}-{n:02d}"
            run_dir = root / run_id
            try:
                run_dir.mkdir()
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - a thousand runs in one second
            raise RunError(f"cannot create a new run folder under {root}")
    write_json(
        run_dir / RUN_INFO,
        {"run_id": run_id, "status": "running", "started_at": now(), **owner(), **info},
    )
    return run_dir


def owner() -> dict[str, Any]:
    """Who runs this process: host, pid and the pid's start time (pids are reused)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "pid_started": _started(os.getpid())}


def _started(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _gone(info: dict[str, Any]) -> bool:
    """Whether the process that wrote ``info`` has ended (only knowable on the same host)."""
    pid = info.get("pid")
    if not isinstance(pid, int) or info.get("host") != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    started = info.get("pid_started")
    return started is not None and _started(pid) not in (None, started)


def mark_abandoned(runs_root: str | Path) -> list[Path]:
    """Mark runs still "running" whose process is gone as failed, with the reason.

    A run killed outright (``kill -9``, a power cut, the OOM killer) cannot say so itself; the
    next run does. Runs of other hosts, and runs from before the pid was recorded, are left.
    """
    root = Path(runs_root)
    marked = []
    for p in sorted(root.glob(f"*/{RUN_INFO}")) if root.is_dir() else []:
        try:
            info = read_json(p)
        except (OSError, ValueError):
            continue
        if info.get("status") == "running" and _gone(info):
            set_status(
                p.parent,
                "failed",
                error=f"abandoned: its process {info['pid']} on {info['host']} ended without "
                "finishing (killed or crashed); found by the next run",
                failed_at=now(),
            )
            marked.append(p.parent)
    return marked


def write_run(run_dir: str | Path, out: RunOutput) -> None:
    """Write a discovery's outputs into its run folder."""
    run_dir = Path(run_dir)
    (run_dir / PROFILES).write_text(out.profiles_json, encoding="utf-8")
    out.assignments.to_parquet(run_dir / ASSIGNMENTS, index=False)
    out.candidates.to_csv(run_dir / CANDIDATES, index=False)
    write_json(run_dir / IDENTITY, out.identity)
    if out.migration is not None:
        out.migration.to_parquet(run_dir / MIGRATION, index=False)
    out.map.to_parquet(run_dir / MAP, index=False)
    if out.model is not None:  # an assign run links its model's file instead
        save_model(out.model, run_dir / MODEL)
    if out.likely is not None:
        save_model(out.likely, run_dir / LIKELY_MODEL)
    write_json(run_dir / METRICS, out.metrics)


def write_profiles(run_dir: str | Path, profiles: dict[str, Any]) -> None:
    """Rewrite a run's ``profiles.json`` (canonical text, atomically): campaign measurement
    adds its tested advice after discovery."""
    from personas.profile.profiles import dumps

    atomic_write(Path(run_dir) / PROFILES, dumps(profiles).encode("utf-8"))


def write_uplift(run_dir: str | Path, uplift: dict[str, Any] | None) -> None:
    """Write (or, for None, remove) the run's campaign uplift table."""
    p = Path(run_dir) / UPLIFT
    if uplift is None:
        p.unlink(missing_ok=True)
    else:
        write_json(p, uplift)


def write_refresh(
    run_dir: str | Path,
    drift: dict[str, Any],
    reference: pd.DataFrame | None = None,
    model_from: str | Path | None = None,
) -> None:
    """A refresh's decision and drift; the fit's reference sample, or the model's files linked.

    An assign run shares its model's ``model.skops`` and reference sample (hard links where
    the file system allows, copies otherwise), so the run folder stays complete on its own.
    """
    import shutil

    run_dir = Path(run_dir)
    if reference is not None:
        reference.rename_axis("customer_id").reset_index().to_parquet(
            run_dir / REFERENCE, index=False
        )
    if model_from is not None:
        for name in (MODEL, LIKELY_MODEL, REFERENCE):
            src, dst = Path(model_from) / name, run_dir / name
            if src.exists():
                dst.unlink(missing_ok=True)
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copy2(src, dst)
    write_json(run_dir / DRIFT, drift)


def set_status(run_dir: str | Path, status: str | None = None, **fields: Any) -> None:
    """Update ``run.json``: a new status and fields; a field given as None is removed."""
    p = Path(run_dir) / RUN_INFO
    d = read_json(p) if p.exists() else {"run_id": Path(run_dir).name}
    if status is not None:
        d["status"] = status
    for k, v in fields.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    d["updated_at"] = now()
    write_json(p, d)


def write_json(path: str | Path, obj: Any) -> None:
    """JSON written to a temporary file and renamed over ``path`` (never half a file)."""
    atomic_write(Path(path), json.dumps(obj, indent=1, default=_plain).encode("utf-8"))


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def now() -> str:
    """The current UTC time as ISO 8601 to the second (run.json, history)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


# ---- the model ------------------------------------------------------------------------------
def save_model(seg: PersonaSegmenter | LikelyPersonaClassifier, path: str | Path) -> None:
    """Persist with skops: loading it back cannot execute arbitrary code."""
    import copy

    import skops.io as sio

    plain = copy.copy(seg)  # skops stores arrays and dicts, not DataFrames
    if hasattr(seg, "candidates_"):
        plain.candidates_ = {c: seg.candidates_[c].tolist() for c in seg.candidates_.columns}
    sio.dump(plain, path)


def load_model(path: str | Path) -> PersonaSegmenter:
    """Load a segmenter saved by :func:`save_model`, trusting only known types.

    Files written before the stage subpackages name the types by their old modules
    (``personas.selection.Fitted``); those names are mapped to today's (:data:`RENAMED`).
    """
    import pandas as pd
    import skops.io as sio

    path = Path(path)
    if not path.exists():
        raise RunError(f"{path}: no model file; publish a run first (personas refresh)")
    data = _renamed(path.read_bytes())
    untrusted = sio.get_untrusted_types(data=data)
    unknown = [
        t
        for t in untrusted
        if t not in TRUSTED and not t.startswith(("sklearn.", "numpy.", "builtins.", "scipy."))
    ]
    if unknown:
        raise RunError(
            f"{path}: refuses to load unexpected types {unknown}; this model was written by "
            "another version of personas: refit it with `personas refresh`"
        )
    try:
        seg = sio.loads(data, trusted=untrusted)
    except (AttributeError, ImportError, TypeError, KeyError) as e:
        raise RunError(
            f"{path}: cannot be loaded by this version of personas ({type(e).__name__}: {e}); "
            "refit it with `personas refresh`"
        ) from e
    if hasattr(seg, "candidates_"):
        seg.candidates_ = pd.DataFrame(seg.candidates_)
    return seg


def _renamed(data: bytes) -> bytes:
    """The skops archive with old module names in its schema replaced by today's."""
    with zipfile.ZipFile(io.BytesIO(data)) as zin:
        schema = zin.read("schema.json").decode("utf-8")
        fixed = schema
        for old, new in RENAMED.items():
            fixed = fixed.replace(f'"{old}"', f'"{new}"')
        if fixed == schema:
            return data
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zout:
            for item in zin.infolist():
                body = fixed.encode("utf-8") if item.filename == "schema.json" else zin.read(item)
                zout.writestr(item, body)
    return out.getvalue()


# ---- helpers --------------------------------------------------------------------------------
def _optional_parquet(path: Path) -> pd.DataFrame | None:
    import pandas as pd

    return pd.read_parquet(path) if path.exists() else None


def _plain(o: object) -> object:
    """numpy scalars as JSON values (NaN and infinities as null)."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return None if not np.isfinite(o) else float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, Mapping):
        return dict(o)
    return str(o)


# ---- retention --------------------------------------------------------------------------------
def prune_runs(
    runs_root: str | Path, keep: int = 30, protect: set[str] | frozenset[str] = frozenset()
) -> list[Path]:
    """Delete run folders beyond the newest ``keep``; never one named in ``protect``.

    ``protect`` holds the run ids something still references: the published run, the runs of
    the publication history and the runs whose models later runs assign with (``model_run``
    in their ``drift.json``, collected here too). Returns the deleted folders.
    """
    import shutil

    root = Path(runs_root)
    if not root.exists():
        return []
    folders = sorted(p for p in root.iterdir() if p.is_dir() and (p / RUN_INFO).exists())
    kept = folders[-max(keep, 1) :]
    protected = set(protect)
    for p in kept + [root / r for r in protect]:
        d = p / DRIFT
        if d.exists():
            protected.add(str(read_json(d).get("model_run") or ""))
    removed = []
    for p in folders[: -max(keep, 1)]:
        if p.name in protected or (p / STAGING).exists() or _status(p) == "running":
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def _status(run_dir: Path) -> str:
    try:
        return str(read_json(run_dir / RUN_INFO).get("status", ""))
    except (OSError, ValueError):
        return ""
