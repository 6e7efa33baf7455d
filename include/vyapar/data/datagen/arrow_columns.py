"""Vectorised builders for Arrow columns: formatted ids, picks from small pools, timestamps and money."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from include.vyapar.data.datagen.schema import TIMESTAMP


def prefixed_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """'CUST000042'-style ids: prefix plus zero-padded number."""
    digits = pc.utf8_lpad(pa.array(np.asarray(numbers, dtype=np.int64)).cast(pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def id_numbers(ids: pa.Array | pa.ChunkedArray, prefix_length: int) -> np.ndarray:
    """The numbers back out of prefixed ids."""
    return pc.cast(pc.utf8_slice_codeunits(ids, prefix_length), pa.int64()).to_numpy()


def pick(pool: list | pa.Array, indices: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    """pool[i] for each index, as a string column; `missing` marks rows that are NULL instead."""
    pool = pool if isinstance(pool, pa.Array) else pa.array(pool, pa.string())
    return pool.take(pa.array(np.asarray(indices, dtype=np.int64), mask=missing))


def join(*parts: pa.Array | str, separator: str = "") -> pa.Array:
    return pc.binary_join_element_wise(*parts, separator)


def timestamps(micros: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(micros, dtype=np.int64), TIMESTAMP, mask=missing)


def dates(day_numbers: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(day_numbers, dtype=np.int32), pa.date32())


def rupees(paise: np.ndarray) -> pa.Array:
    """Money is computed in integer paise so sums are exact; stored as rupees with 2 decimals."""
    return pa.array(np.round(np.asarray(paise, dtype=np.int64) / 100.0, 2), pa.float64())


def int32s(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int32), pa.int32())


def uuid_like(seed_rng: np.random.Generator, count: int) -> pa.Array:
    """Random-looking but reproducible 8-4-4-4-12 hex ids, built without a per-row loop."""
    hex_digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    raw = seed_rng.integers(0, 256, size=(count, 16), dtype=np.uint8)
    nibbles = np.stack([raw >> 4, raw & 15], axis=2).reshape(count, 32)
    chars = hex_digits[nibbles]
    dash = np.full((count, 1), ord("-"), dtype=np.uint8)
    laid_out = np.concatenate(
        [chars[:, :8], dash, chars[:, 8:12], dash, chars[:, 12:16], dash, chars[:, 16:20], dash, chars[:, 20:]],
        axis=1,
    )
    return pa.array(np.ascontiguousarray(laid_out).view("S36").ravel(), pa.binary()).cast(pa.string())
