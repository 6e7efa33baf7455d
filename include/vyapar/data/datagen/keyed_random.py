"""Two kinds of deterministic randomness: sequential streams per (seed, batch, purpose) and keyed draws.

Keyed draws are a pure function of (seed, purpose, entity number), so a later batch can recompute an
order's whole lifecycle without storing it.
"""

from __future__ import annotations

import zlib

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _purpose_code(purpose: str) -> int:
    return zlib.crc32(purpose.encode())


def stream(seed: int, batch_number: int, purpose: str) -> np.random.Generator:
    """A generator private to one purpose in one batch, so adding draws elsewhere never shifts it."""
    return np.random.default_rng([seed, batch_number, _purpose_code(purpose)])


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint64(30))
    x = x * _MIX1
    x = x ^ (x >> np.uint64(27))
    x = x * _MIX2
    return x ^ (x >> np.uint64(31))


def keyed_uniform(seed: int, purpose: str, keys: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) draws that depend only on (seed, purpose, key)."""
    offset = np.uint64(((seed & 0xFFFFFFFF) << 32) | _purpose_code(purpose))
    with np.errstate(over="ignore"):
        mixed = _splitmix64(np.asarray(keys, dtype=np.uint64) * _GOLDEN + _splitmix64(np.array([offset]))[0])
    return (mixed >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def keyed_choice(seed: int, purpose: str, keys: np.ndarray, shares: list[float]) -> np.ndarray:
    """Index into `shares` for each key, with probabilities proportional to the shares."""
    cumulative = np.cumsum(shares) / np.sum(shares)
    picks = np.searchsorted(cumulative, keyed_uniform(seed, purpose, keys), side="right")
    return np.minimum(picks, len(shares) - 1)
