"""Customer ids are text: membership among a million of them is tested in Arrow.

pandas 3's ``isin`` on Arrow-backed text builds one Python scalar per value of the set it is
given (13 CPU-s for the million ids of a refresh's drift check, 21 CPU-s per assign run at 1M
customers); ``pyarrow.compute.is_in`` hashes the set in C++.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def _text(values: Any) -> pa.Array:
    s = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object))
    return pa.array(s.astype(str), from_pandas=True).cast(pa.large_string())


def among(ids: Any, values: Any) -> np.ndarray:
    """A boolean per id in ``ids``: is it (as text) one of ``values``?"""
    hit = pc.is_in(_text(ids), value_set=_text(values))
    return hit.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)
