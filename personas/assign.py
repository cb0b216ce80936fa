"""Score customers with a published persona model (new customers, prospects, a CRM extract).

The input is a features table (as written by ``build_features``, or any table with the model's
feature columns). Customers with enough history get a persona and a confidence; the others get
an explicit "not yet profiled" group, never a silent guess. When the run has a likely-persona
model, prospects and one-purchase customers also get ``likely_persona`` (or "undecided") and
its probability, shown as likely, never counted as members.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from personas import runs
from personas.errors import PersonasError
from personas.publish.audiences import LIFETIME_COLUMNS
from personas.segment.likely import UNDECIDED
from personas.segment.segmenter import NOT_PROFILED, derive_lifecycle
from personas.threads import with_model_threads


@dataclass
class AssignResult:
    out: Path
    counts: dict[str, int]

    def summary(self) -> str:
        # likely personas are a second placement of customers already counted, never a size
        total = sum(v for k, v in self.counts.items() if not k.startswith("likely "))
        lines = [f"assigned {total:,} customers -> {self.out}"]
        lines += [f"  {k:<40} {v:>10,}" for k, v in self.counts.items()]
        return "\n".join(lines)


def assign_frame(X: pd.DataFrame, run_dir: str | Path) -> pd.DataFrame:
    """Persona id, name, confidence per customer (index: customer_id); with the features'
    P(alive) and expected days to the next purchase when they have them."""
    return assign_with(*run_models(run_dir), X)


def run_models(run_dir: str | Path) -> tuple[Any, Any, dict[int, tuple[Any, str]]]:
    """A run's persona model, its likely-persona model (or None) and persona index -> (id,
    name): what :func:`assign_with` needs, loaded once (Spark ships them to its executors)."""
    run = runs.load_run(run_dir)
    by_index = {p["index"]: (p["id"], p["name"]) for p in run.profiles["personas"]}
    return run.model(), run.likely_model(), by_index


@with_model_threads
def assign_with(
    seg: Any, likely: Any, by_index: dict[int, tuple[Any, str]], X: pd.DataFrame
) -> pd.DataFrame:
    """:func:`assign_frame` with the models loaded already (the same code on every engine)."""
    missing = [c for c in seg.features_ if c not in X.columns]
    if missing:
        raise PersonasError(
            f"the input lacks feature column(s) {', '.join(missing)} that the model uses; "
            "compute them with `personas features` over a lake with the same tables"
        )
    labels, conf = seg.assign(X)
    ids, names = [], []
    for lab in labels:
        if lab >= 0:
            pid, name = by_index[int(lab)]
        else:
            pid, name = NOT_PROFILED[int(lab)]
        ids.append(pid)
        names.append(name)
    out = pd.DataFrame(
        {"persona_id": ids, "persona_name": names, "confidence": conf, "profiled": labels >= 0},
        index=X.index,
    )
    if likely is not None:
        stage = pd.Series("repeat", index=X.index, dtype=object)
        rest = labels < 0
        if rest.any():
            stage[rest] = derive_lifecycle(X.loc[rest])
        # a signal the table lacks counts as missing (the trees route it like a blank value)
        cols = sorted({c for s in likely.signals_.values() for c in s} - set(X.columns))
        Xl = X.assign(**dict.fromkeys(cols, float("nan"))) if cols else X
        got = likely.likely(Xl, stage.to_numpy())
        label = {pid: name for pid, name in by_index.values()}
        label[UNDECIDED] = "Undecided (no persona is likely enough)"
        out["likely_persona"] = got["likely_persona"].to_numpy()
        out["likely_persona_name"] = [label.get(p) if p else None for p in out["likely_persona"]]
        out["likely_probability"] = got["likely_probability"].round(6).to_numpy()
    for c in LIFETIME_COLUMNS:
        if c in X.columns:
            out[c] = X[c].astype(float).round(6).to_numpy()
    return out


def assign_file(
    path: str | Path, run_dir: str | Path, out: str | Path | None = None
) -> AssignResult:
    """Read a features file (.parquet or .csv), assign, write the result beside it."""
    path = Path(path)
    if path.suffix == ".csv":
        X = pd.read_csv(path, dtype={"customer_id": str})
    elif path.suffix in (".parquet", ".pq"):
        X = pd.read_parquet(path)
    else:
        raise PersonasError(f"{path.name}: expected a .parquet or .csv features table")
    if "customer_id" not in X.columns:
        raise PersonasError(f"{path.name}: needs a customer_id column")
    X = X.set_index("customer_id")
    res = assign_frame(X, run_dir).reset_index()
    out = Path(out) if out else path.with_name(path.stem + ".personas.parquet")
    if out.suffix == ".csv":
        res.to_csv(out, index=False)
    else:
        res.to_parquet(out, index=False)
    counts = res.groupby(["persona_id", "persona_name"]).size()
    tally = {f"{i} {n}": int(c) for (i, n), c in counts.items()}
    if "likely_persona" in res.columns:
        for pid, c in res["likely_persona"].dropna().value_counts().sort_index().items():
            tally[f"likely {pid}"] = int(c)
    return AssignResult(out, tally)
