"""When Indian shoppers are active: evenings IST, weekends, and the Oct-Nov festive season around Diwali.

Timestamps are int64 microseconds since the epoch, naive UTC, as they are stored.
"""

from __future__ import annotations

import numpy as np

from include.vyapar.data.datagen.reference_data import DIWALI_DATES

US_PER_SECOND = 1_000_000
US_PER_HOUR = 3600 * US_PER_SECOND
US_PER_DAY = 24 * US_PER_HOUR
IST_OFFSET_US = 5 * US_PER_HOUR + 30 * 60 * US_PER_SECOND

# Relative activity by IST hour of day: quiet nights, a lunch bump, a 8-11 pm peak.
_HOUR_PROFILE_IST = np.array(
    [
        0.35,
        0.2,
        0.12,
        0.08,
        0.08,
        0.12,
        0.3,
        0.55,
        0.8,
        1.0,
        1.1,
        1.2,
        1.3,
        1.35,
        1.25,
        1.15,
        1.1,
        1.15,
        1.3,
        1.5,
        1.75,
        1.85,
        1.6,
        0.95,
    ]
)
_HOUR_PROFILE_IST = _HOUR_PROFILE_IST / _HOUR_PROFILE_IST.mean()
_DIWALI_DAYS = np.array(sorted(DIWALI_DATES.values()), dtype="datetime64[D]").astype(np.int64)


def ist_day_number(timestamps_us: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of the India calendar date of each UTC timestamp."""
    return np.floor_divide(np.asarray(timestamps_us) + IST_OFFSET_US, US_PER_DAY)


def day_factor(ist_days: np.ndarray) -> np.ndarray:
    """Demand multiplier for each IST calendar day (days since epoch)."""
    ist_days = np.asarray(ist_days, dtype=np.int64)
    weekday = (ist_days + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    factor = np.where(weekday >= 5, 1.3, np.where(weekday == 4, 1.1, 1.0))
    month = ist_days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12 + 1
    factor = factor * np.where(month == 10, 1.45, np.where(month == 11, 1.55, 1.0))
    days_to_diwali = np.min(np.abs(ist_days[:, None] - _DIWALI_DAYS[None, :]), axis=1) if ist_days.size else 0
    return factor * np.where(days_to_diwali <= 4, 1.6, 1.0)


def _hour_grid(start_us: int, end_us: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hours overlapping [start, end): the overlap's start, its length, and its activity weight."""
    first_hour = start_us // US_PER_HOUR
    last_hour = -(-end_us // US_PER_HOUR)
    hour_starts = np.arange(first_hour, last_hour, dtype=np.int64) * US_PER_HOUR
    lo = np.maximum(hour_starts, start_us)
    hi = np.minimum(hour_starts + US_PER_HOUR, end_us)
    length = np.maximum(hi - lo, 0)
    ist_hour = ((hour_starts + IST_OFFSET_US) // US_PER_HOUR) % 24
    weight = _HOUR_PROFILE_IST[ist_hour] * day_factor(ist_day_number(hour_starts)) * (length / US_PER_HOUR)
    return lo, length, weight


def activity_weight(start_us: int, end_us: int) -> float:
    """Total activity in [start, end), in 'average hours': a rate per weight gives an expected count."""
    if end_us <= start_us:
        return 0.0
    return float(_hour_grid(start_us, end_us)[2].sum())


def sample_times(rng: np.random.Generator, start_us: int, end_us: int, count: int) -> np.ndarray:
    """`count` sorted timestamps in [start, end), denser when shoppers are more active."""
    if count == 0 or end_us <= start_us:
        return np.zeros(0, dtype=np.int64)
    lo, length, weight = _hour_grid(start_us, end_us)
    hours = rng.choice(len(weight), size=count, p=weight / weight.sum())
    times = lo[hours] + (rng.random(count) * length[hours]).astype(np.int64)
    return np.sort(times)
