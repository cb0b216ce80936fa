"""Publish a run: report, cards, audiences, safety scan, history, then the atomic switch.

``publish(run_dir, published_root)`` turns a discovered run folder into what people use:

* ``report.html`` (:mod:`personas.publish.report`), ``cards/<slug>.md`` and ``cards/<slug>.html``
  (:mod:`personas.publish.cards`) for every persona;
* ``audiences/<slug>.csv`` and ``.parquet`` (customer_id, persona_id, persona_name,
  confidence) for every persona **and** every published not-profiled group (e.g. ``NEW``
  "New customers (one purchase)"): those groups are the audiences of onboarding and
  first-purchase campaigns, and they are published only when they reach the minimum persona
  size, like personas. Rows are ordered by decreasing confidence so "the most typical 1,000"
  is simply the top of the file.

Order matters, because a failure must never leave a half-published state visible:

1. validate ``profiles.json`` against the published JSON Schema;
2. write every output into ``<run>/_publishing/`` and run the safety scan over it and over
   every other file of the run folder (the folder ``latest`` will expose);
3. move the outputs into place, append to the run history, mark ``run.json`` "published";
4. only then switch ``published_root/latest`` to the run: a new symlink is created under a
   temporary name and renamed over the old one (``os.replace``, atomic on POSIX), so readers
   see either the old or the new run, never none.

Any exception marks the run "failed" with the error, restores the history and leaves
``latest`` where it was; a killed process leaves at most a ``_publishing/`` folder that the
next attempt deletes.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from personas.errors import PersonasError
from personas.profile.profiles import slugify
from personas.profile.validate import validate_profiles
from personas.publish import cards as cardmod
from personas.publish import report as reportmod
from personas.publish.cards import md_escape

HISTORY_FILE = "history.json"
LATEST = "latest"
STAGING = "_publishing"
AUDIENCE_COLUMNS = ["customer_id", "persona_id", "persona_name", "confidence"]
# Column names that hold personal data. The lake never stores them in clear, but a published
# file is checked anyway: a mapping mistake upstream must not reach a marketing tool.
PII_COLUMNS = frozenset(
    {
        "name",
        "full_name",
        "first_name",
        "last_name",
        "surname",
        "given_name",
        "customer_name",
        "email",
        "e_mail",
        "email_address",
        "mail",
        "phone",
        "phone_number",
        "telephone",
        "mobile",
        "mobile_phone",
        "address",
        "street",
        "street_address",
        "address_line_1",
        "address_line_2",
        "postcode",
        "postal_code",
        "zip",
        "zip_code",
        "birth_date",
        "date_of_birth",
        "dob",
        "ssn",
        "social_security_number",
        "national_id",
        "passport",
        "iban",
        "card_number",
        "credit_card",
        "ip",
        "ip_address",
    }
)
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_PUBLISHABLE_STATUS = {"discovered", "published", "failed"}


class PublishError(PersonasError, RuntimeError):
    """The run cannot be published (incomplete run, broken history, unsafe output)."""


class SafetyError(PublishError):
    """A file about to be published contains personal data or describes too few customers."""


@dataclass
class PublishResult:
    """What a publication wrote; paths are absolute."""

    run_dir: Path
    report: Path
    cards: list[Path]
    audiences: list[Path]
    latest: Path
    history: Path
    seconds: float
    scanned: list[Path] = field(default_factory=list)


# ---- publish ---------------------------------------------------------------------------------
def publish(
    run_dir: str | Path,
    published_root: str | Path,
    lake_dir: str | Path | None = None,
    history_limit: int = 50,
) -> PublishResult:
    """Publish ``run_dir`` and point ``published_root/latest`` at it (see the module docstring).

    Parameters
    ----------
    run_dir : path
        A run folder written by :func:`personas.discover.discover`.
    published_root : path
        Holds ``latest`` (symlink to the published run) and ``history.json``.
    lake_dir : path, optional
        The lake the run was computed from; its manifest gives the report's data lineage.
    history_limit : int
        Number of publications kept in the history (oldest dropped first).
    """
    t0 = time.perf_counter()
    run_dir = Path(run_dir).resolve()
    root = Path(published_root)
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    if not (run_dir / "profiles.json").exists():
        raise PublishError(f"{run_dir} is not a run folder: profiles.json is missing")
    with _lock(root):
        hist_path = root / HISTORY_FILE
        old_history = hist_path.read_bytes() if hist_path.exists() else None
        # re-publishing the run that is live: a failure must not call the live run "failed"
        live = (root / LATEST).exists() and (root / LATEST).resolve() == run_dir
        try:
            return _publish(run_dir, root, lake_dir, history_limit, t0)
        except BaseException as exc:
            shutil.rmtree(run_dir / STAGING, ignore_errors=True)
            if old_history is None:
                hist_path.unlink(missing_ok=True)
            else:
                _atomic_write(hist_path, old_history)
            error = f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(OSError, ValueError):  # never mask the real error
                if live:
                    _set_status(run_dir, "published", last_error=error, failed_at=_now())
                else:
                    _set_status(run_dir, "failed", error=error, failed_at=_now())
            raise


def _publish(
    run_dir: Path, root: Path, lake_dir: str | Path | None, history_limit: int, t0: float
) -> PublishResult:
    run_info = _read_json(run_dir / "run.json") if (run_dir / "run.json").exists() else {}
    status = run_info.get("status", "discovered")
    if status not in _PUBLISHABLE_STATUS:
        raise PublishError(
            f"{run_dir.name}: run status is {status!r}; only a finished run "
            f"({', '.join(sorted(_PUBLISHABLE_STATUS))}) can be published"
        )
    profiles = _read_json(run_dir / "profiles.json")
    validate_profiles(profiles)
    published_at = _now()
    history = read_history(root)
    run = reportmod.load_run(run_dir)
    entry = reportmod.history_entry(run, published_at=published_at)
    history = [h for h in history if h.get("run_id") != entry["run_id"]] + [entry]
    history = history[-max(1, history_limit) :]
    rows = lineage(lake_dir) if lake_dir is not None else None

    staging = run_dir / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "cards").mkdir(parents=True)
    (staging / "audiences").mkdir()
    (staging / "report.html").write_text(
        reportmod.render(run_dir, history=history, lineage=rows), encoding="utf-8"
    )
    for p in profiles["personas"]:
        (staging / "cards" / f"{p['slug']}.md").write_text(
            cardmod.render_markdown(profiles, p), encoding="utf-8"
        )
        (staging / "cards" / f"{p['slug']}.html").write_text(
            cardmod.render_html(profiles, p), encoding="utf-8"
        )
    write_audiences(run_dir / "assignments.parquet", profiles, staging / "audiences")

    problems = scan(staging, profiles) + scan(run_dir, profiles, skip=(STAGING,))
    if problems:
        raise SafetyError(
            "refusing to publish; the safety scan found:\n  " + "\n  ".join(problems[:20])
        )
    for name in ("report.html", "cards", "audiences"):
        target = run_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(staging / name, target)
    staging.rmdir()

    _atomic_write(
        root / HISTORY_FILE,
        json.dumps({"schema_version": 1, "runs": history}, indent=1, ensure_ascii=False).encode(),
    )
    card_paths = sorted((run_dir / "cards").iterdir())
    audience_paths = sorted((run_dir / "audiences").iterdir())
    _set_status(
        run_dir,
        "published",
        published_at=published_at,
        error=None,
        last_error=None,
        failed_at=None,
        outputs={
            "report": "report.html",
            "cards": [f"cards/{p.name}" for p in card_paths],
            "audiences": [f"audiences/{p.name}" for p in audience_paths],
        },
    )
    latest = switch_latest(root, run_dir)
    return PublishResult(
        run_dir,
        run_dir / "report.html",
        card_paths,
        audience_paths,
        latest,
        root / HISTORY_FILE,
        time.perf_counter() - t0,
        sorted(p for p in run_dir.rglob("*") if p.is_file()),
    )


def switch_latest(published_root: Path, run_dir: Path) -> Path:
    """Point ``published_root/latest`` at ``run_dir`` atomically (temp symlink + rename).

    The link is relative when possible, so a workspace can be moved or mounted elsewhere.
    """
    latest = published_root / LATEST
    if latest.exists() and not latest.is_symlink():
        raise PublishError(f"{latest} exists and is not a symlink; move it away to publish")
    try:
        target = os.path.relpath(run_dir, published_root)
    except ValueError:  # different drives (Windows)
        target = str(run_dir)
    tmp = published_root / f".{LATEST}.tmp-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp, target_is_directory=True)
    os.replace(tmp, latest)
    return latest


# ---- audiences -------------------------------------------------------------------------------
def audience_groups(profiles: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(id, name, slug) of every audience: each persona and each published group."""
    out = [(p["id"], p["name"], p["slug"]) for p in profiles["personas"]]
    out += [
        (g["id"], g["name"], slugify(f"{g['id']}-{g['name']}"))
        for g in profiles["groups"]
        if g.get("published")
    ]
    return out


def write_audiences(
    assignments: str | Path, profiles: Mapping[str, Any], out_dir: str | Path
) -> list[Path]:
    """CSV and Parquet audience files per persona/published group; returns the paths.

    The CSV is RFC 4180 (fields with commas, quotes or line breaks are quoted, quotes
    doubled) in UTF-8, which marketing-automation imports expect; customer ids are written
    exactly as in the data so they match the CRM.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df = pd.read_parquet(assignments, columns=AUDIENCE_COLUMNS)
    df["customer_id"] = df["customer_id"].astype(str)
    paths = []
    for gid, _name, slug in audience_groups(profiles):
        sub = df[df["persona_id"] == gid].sort_values(
            ["confidence", "customer_id"], ascending=[False, True], na_position="last"
        )
        sub = sub.reset_index(drop=True)
        csv_path, pq_path = out / f"{slug}.csv", out / f"{slug}.parquet"
        sub.to_csv(
            csv_path, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n", encoding="utf-8"
        )
        sub.to_parquet(pq_path, index=False)
        paths += [csv_path, pq_path]
    return paths


# ---- safety -------------------------------------------------------------------------------------
def scan(folder: str | Path, profiles: Mapping[str, Any], skip: Sequence[str] = ()) -> list[str]:
    """Problems in the files under ``folder`` that would be published (empty when safe).

    Checks: no personal-data column in a Parquet/CSV file, no e-mail address
    in any text (the embedded plotly.js bundle, a third-party file, is left out), every
    audience file and card describes a persona or published group of at least the minimum
    size and matches its size in the profiles.
    """
    folder = Path(folder)
    min_size = int(profiles["min_persona_size"])
    sizes = {p["slug"]: (p["id"], p["size"]) for p in profiles["personas"]}
    for g in profiles["groups"]:
        if g.get("published"):
            sizes[slugify(f"{g['id']}-{g['name']}")] = (g["id"], g["size"])
    problems: list[str] = []
    bundle = reportmod.plotly_bundle()
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if not path.is_file() or (rel.parts and rel.parts[0] in skip):
            continue
        suffix = path.suffix.lower()
        try:
            if suffix == ".parquet":
                cols = pq.read_schema(path).names
                problems += _pii_columns(rel, cols)
                if rel.parts[0] == "audiences":
                    problems += _audience_problems(
                        rel, pq.read_metadata(path).num_rows, sizes, min_size
                    )
                if "customer_id" in cols:
                    ids = pd.read_parquet(path, columns=["customer_id"])["customer_id"]
                    problems += _email_values(rel, ids.astype(str))
            elif suffix == ".csv":
                with open(path, newline="", encoding="utf-8") as fh:
                    reader = csv.reader(fh)
                    header = next(reader, [])
                    problems += _pii_columns(rel, header)
                    n_rows, emails = 0, []
                    for row in reader:  # streamed: audiences can hold millions of rows
                        n_rows += 1
                        if not emails:
                            emails = _email_values(rel, row)
                problems += emails
                if rel.parts[0] == "audiences":
                    problems += _audience_problems(rel, n_rows, sizes, min_size)
            elif suffix == ".json":
                obj = json.loads(path.read_text(encoding="utf-8"))
                problems += _json_problems(rel, obj)
            elif suffix in (".html", ".md", ".txt"):
                text = path.read_text(encoding="utf-8").replace(bundle, "")
                m = EMAIL_RE.search(text)
                if m:
                    problems.append(f"{rel}: contains an e-mail address ({m.group(0)[:3]}...)")
                if rel.parts[0] == "cards" and path.stem not in sizes:
                    problems.append(f"{rel}: card of no published persona")
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            problems.append(f"{rel}: cannot be checked ({type(exc).__name__}: {exc})")
    return problems


def _norm(col: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(col).lower()).strip("_")


def _pii_columns(rel: Path, cols: Sequence[str]) -> list[str]:
    bad = [c for c in cols if _norm(c) in PII_COLUMNS]
    return [f"{rel}: personal-data column(s) {bad}"] if bad else []


def _audience_problems(
    rel: Path, n: int, sizes: Mapping[str, tuple[str, int]], min_size: int
) -> list[str]:
    slug = rel.stem
    if slug not in sizes:
        return [f"{rel}: audience of no published persona or group"]
    gid, size = sizes[slug]
    out = []
    if n < min_size:
        out.append(f"{rel}: {n} customers, below the minimum persona size {min_size}")
    if n != size:
        out.append(f"{rel}: {n} customers but the profile of {gid} says {size}")
    return out


def _email_values(rel: Path, values: Any) -> list[str]:
    """An e-mail address used as a customer id (or any cell) is personal data too."""
    for v in values:
        v = str(v)
        if "@" in v and EMAIL_RE.fullmatch(v.strip()):
            return [f"{rel}: a value looks like an e-mail address"]
    return []


def _json_problems(rel: Path, obj: Any) -> list[str]:
    """E-mail addresses anywhere in a JSON document (keys included).

    Keys are not compared with :data:`PII_COLUMNS`: profiles key aggregates by category,
    channel and attribute values ("phone" is a sales channel), never by person.
    """
    out: list[str] = []

    def walk(o: Any, where: str) -> None:
        if isinstance(o, dict):
            for k, v in o.items():
                if EMAIL_RE.search(str(k)):
                    out.append(f"{rel}: e-mail address as a key at {where or '/'}")
                walk(v, f"{where}/{k}")
        elif isinstance(o, list):
            for i, v in enumerate(o):
                walk(v, f"{where}/{i}")
        elif isinstance(o, str) and EMAIL_RE.search(o):
            out.append(f"{rel}: e-mail address at {where}")

    walk(obj, "")
    return out


# ---- history, lineage, summaries ----------------------------------------------------------------
def read_history(published_root: str | Path) -> list[dict[str, Any]]:
    """Published runs, oldest first (empty before the first publication)."""
    p = Path(published_root) / HISTORY_FILE
    if not p.exists():
        return []
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
        runs = d["runs"]
        if not isinstance(runs, list):
            raise TypeError("runs is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        raise PublishError(
            f"{p} is not a valid run history ({exc}); restore it from a "
            "backup or delete it to start a new history"
        ) from exc
    return runs


def lineage(lake_dir: str | Path) -> list[dict[str, Any]]:
    """Row accounting per ingested source from the lake manifest, in commit order.

    Only the source's name is kept, never its full path or connection string (which could
    carry a user name or a password).
    """
    from personas.lake import Lake

    rows = []
    for b in Lake(lake_dir).batches():
        for s in b.sources:
            rows.append(
                {
                    "batch_id": b.batch_id,
                    "committed_at": b.committed_at,
                    "mapping": b.mapping,
                    "source": s.source,
                    "table": s.table,
                    "rows_in": s.rows_in,
                    "accepted": s.accepted,
                    "quarantined": s.quarantined,
                    "duplicates": s.duplicates,
                    "rules": dict(s.rules),
                    "flags": dict(s.flags),
                }
            )
    return rows


def summary_table(profiles: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per persona and published group, for a Prefect table artifact."""
    rows = []
    for p in sorted(profiles["personas"], key=lambda q: (-q["size"], q["id"])):
        rows.append(
            {
                "id": p["id"],
                "persona": p["name"],
                "customers": p["size"],
                "share": f"{p['share']:.1%}",
                "top_trait": p["traits"][0]["text"] if p["traits"] else "",
                "first_action": p["actions"][0]["title"] if p["actions"] else "",
            }
        )
    for g in profiles["groups"]:
        if g.get("published"):
            rows.append(
                {
                    "id": g["id"],
                    "persona": g["name"],
                    "customers": g["size"],
                    "share": f"{g['share']:.1%}",
                    "top_trait": g.get("reason", ""),
                    "first_action": "",
                }
            )
    return rows


def summary_markdown(profiles: Mapping[str, Any]) -> str:
    """A short Markdown summary of the personas, for a Prefect markdown artifact.

    Every data-derived value is escaped with :func:`personas.publish.cards.md_escape`.
    """
    e = md_escape
    pop = profiles["population"]
    m = profiles["model"]
    n = pop["customers"]
    lines = [
        f"## Buyer personas as of {e(profiles.get('as_of'))}",
        "",
        f"{n:,} customers, {len(profiles['personas'])} personas covering "
        f"{pop['profiled'] / max(n, 1):.0%} of them. Model: {e(m.get('algorithm'))} with "
        f"{m.get('k')} personas, bootstrap stability {_fmt(m.get('stability'), '{:.2f}')}, "
        f"rule fidelity {_fmt(profiles['rules'].get('fidelity'), '{:.0%}')}.",
        "",
        "| Persona | Customers | Share | What sets them apart | First action |",
        "|---|---:|---:|---|---|",
    ]
    for r in summary_table(profiles):
        lines.append(
            f"| {e(r['id'])} {e(r['persona'])} | {r['customers']:,} | {r['share']} | "
            f"{e(r['top_trait'])} | {e(r['first_action'])} |"
        )
    small = [g for g in profiles["groups"] if not g.get("published")]
    if small:
        lines += [
            "",
            "Not published (below the minimum size of "
            f"{profiles['min_persona_size']:,}): " + ", ".join(e(g["name"]) for g in small) + ".",
        ]
    return "\n".join(lines) + "\n"


# ---- helpers ------------------------------------------------------------------------------------
@contextlib.contextmanager
def _lock(root: Path) -> Iterator[None]:
    """One publication at a time per published root (history and ``latest`` are shared)."""
    with open(root / ".publish.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _set_status(run_dir: Path, status: str, **fields: Any) -> None:
    p = run_dir / "run.json"
    d = _read_json(p) if p.exists() else {"run_id": run_dir.name}
    d["status"] = status
    for k, v in fields.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    d["updated_at"] = _now()
    _atomic_write(p, json.dumps(d, indent=1, ensure_ascii=False).encode())


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _fmt(x: Any, spec: str) -> str:
    return "n/a" if x is None else spec.format(x)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
