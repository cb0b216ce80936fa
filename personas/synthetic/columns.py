"""Arrow columns of the exports: identifiers, order numbers and coded labels.

Draws keep labels as small integer codes; these turn them into the text a retailer's export holds,
dictionary-encoded where the values repeat, which writes the same CSV at a fraction of the memory.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def numbered(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Identifiers such as ``C00000042``: a prefix and a zero-padded number."""
    digits = pc.utf8_lpad(
        pc.cast(pa.array(numbers, pa.int64()), pa.string()), width=width, padding="0"
    )
    return pc.binary_join_element_wise(prefix, digits, "")


def order_ids(is_return: np.ndarray, number: np.ndarray) -> pa.Array:
    """``O`` + number for orders, ``R`` + the same number for their returns."""
    digits = pc.utf8_lpad(pc.cast(pa.array(number, pa.int64()), pa.string()), width=9, padding="0")
    prefix = pa.array(np.where(is_return, "R", "O"))
    return pc.binary_join_element_wise(prefix, digits, "")


def labels(values: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    """Codes to labels; negative codes become nulls."""
    return pa.array(values).take(pa.array(codes, pa.int64(), mask=codes < 0))


def coded(values: pa.Array, codes: np.ndarray) -> pa.DictionaryArray:
    """Codes into ``values`` as a dictionary array (negative codes are nulls).

    Written to CSV exactly like the decoded strings, at a fraction of the memory.
    """
    indices = pa.array(codes.astype(np.int32), pa.int32(), mask=codes < 0)
    return pa.DictionaryArray.from_arrays(indices, values)
