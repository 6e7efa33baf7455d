"""Customers: Indian names from Faker's en_IN pools, a real city/state/pincode, and a loyalty weight."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from faker import Faker

from include.vyapar.data.datagen import arrow_columns as col
from include.vyapar.data.datagen.keyed_random import keyed_uniform
from include.vyapar.data.datagen.reference_data import CITIES, EMAIL_DOMAINS
from include.vyapar.data.datagen.schema import CUSTOMERS


@lru_cache(maxsize=8)
def name_pools(seed: int) -> tuple[list[str], list[str]]:
    """Small sorted pools of first and last names; Faker runs a few hundred times, never per customer."""
    fake = Faker("en_IN")
    fake.seed_instance(seed)
    first_names = sorted({fake.first_name() for _ in range(600)})
    last_names = sorted({fake.last_name() for _ in range(400)})
    return first_names, last_names


@dataclass
class CustomerBase:
    """Everyone who has signed up so far, in signup order (customer number i + 1 is index i)."""

    seed: int
    signup_us: np.ndarray

    @property
    def size(self) -> int:
        return len(self.signup_us)

    def _cumulative_loyalty(self) -> np.ndarray:
        # Most customers buy once or twice, a tenth are loyal regulars: gives RFM segments something to find.
        numbers = np.arange(1, self.size + 1)
        tier = keyed_uniform(self.seed, "customer_loyalty_tier", numbers)
        jitter = 0.7 + 0.6 * keyed_uniform(self.seed, "customer_loyalty_jitter", numbers)
        weight = np.where(tier < 0.55, 0.3, np.where(tier < 0.9, 1.0, 6.0)) * jitter
        return np.cumsum(weight)

    def pick_active(self, rng: np.random.Generator, at_us: np.ndarray) -> np.ndarray:
        """A customer who had signed up by each time, loyal ones more often; 0 where nobody had yet."""
        cumulative = self._cumulative_loyalty()
        signed_up = np.searchsorted(self.signup_us, at_us, side="right")
        ceiling = np.where(signed_up > 0, cumulative[np.maximum(signed_up - 1, 0)], 0.0)
        index = np.searchsorted(cumulative, rng.random(len(at_us)) * ceiling, side="right")
        return np.where(signed_up > 0, np.minimum(index, signed_up - 1) + 1, 0)


def customer_ids(numbers: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    ids = col.prefixed_ids("CUST", np.where(numbers > 0, numbers, 1), 6)
    return pc.if_else(pa.array(missing), pa.nulls(len(ids), pa.string()), ids) if missing is not None else ids


def build_customers(
    seed: int, rng: np.random.Generator, first_number: int, signup_us: np.ndarray, now_us: int
) -> pa.Table:
    count = len(signup_us)
    numbers = np.arange(first_number, first_number + count)
    first_names, last_names = name_pools(seed)
    first = col.pick(first_names, rng.integers(0, len(first_names), count))
    last = col.pick(last_names, rng.integers(0, len(last_names), count))

    domains = [domain for domain, _ in EMAIL_DOMAINS]
    domain_share = np.array([share for _, share in EMAIL_DOMAINS])
    local_part = pc.replace_substring_regex(pc.utf8_lower(col.join(first, ".", last)), r"[^a-z.]", "")
    # The customer number in the address keeps every email unique, as a real signup form would enforce.
    email = col.join(
        local_part,
        pa.array(numbers).cast(pa.string()),
        "@",
        col.pick(domains, rng.choice(len(domains), count, p=domain_share / domain_share.sum())),
    )
    phone = col.join("+91", pa.array(rng.integers(6_000_000_000, 10_000_000_000, count)).cast(pa.string()))

    city_share = np.array([share for *_, share in CITIES])
    city = rng.choice(len(CITIES), count, p=city_share / city_share.sum())
    pincode = np.array([prefix for _, _, prefix, _ in CITIES])[city] * 1000 + rng.integers(1, 100, count)

    profile_edited = rng.random(count) < 0.3
    updated = signup_us + (rng.random(count) * np.maximum(now_us - signup_us, 0)).astype(np.int64)

    return pa.Table.from_arrays(
        [
            customer_ids(numbers),
            col.uuid_like(rng, count),
            first,
            last,
            email,
            phone,
            col.pick([city for city, *_ in CITIES], city),
            col.pick([state for _, state, *_ in CITIES], city),
            pa.array(pincode).cast(pa.string()),
            col.timestamps(signup_us),
            col.timestamps(np.where(profile_edited, updated, signup_us)),
        ],
        schema=CUSTOMERS,
    )
