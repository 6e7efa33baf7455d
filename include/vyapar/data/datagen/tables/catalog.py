"""Products and their daily inventory snapshots, one warehouse per product."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from include.vyapar.data.datagen import arrow_columns as col
from include.vyapar.data.datagen.keyed_random import keyed_choice, keyed_uniform
from include.vyapar.data.datagen.reference_data import CATEGORIES, WAREHOUSES
from include.vyapar.data.datagen.schema import INVENTORY, PRODUCTS
from include.vyapar.data.datagen.seasonality import US_PER_DAY, day_factor

# Average units sold per order line (quantity is mostly 1), to turn order volume into stock depletion.
UNITS_PER_LINE = 1.35
RESTOCK_LEAD_DAYS = (2, 9)


@dataclass
class Catalog:
    """What orders and clicks need to know about products: list prices and how popular each one is."""

    seed: int
    price_paise: np.ndarray  # index i is product number i + 1

    @property
    def size(self) -> int:
        return len(self.price_paise)

    @property
    def popularity(self) -> np.ndarray:
        """Heavy-tailed demand share per product: a few bestsellers, a long tail."""
        draw = keyed_uniform(self.seed, "product_popularity", np.arange(1, self.size + 1))
        weight = np.minimum((1.0 - draw) ** -0.9, 60.0)
        return weight / weight.sum()

    def pick(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """Product numbers drawn by popularity."""
        cumulative = np.cumsum(self.popularity)
        return np.minimum(np.searchsorted(cumulative, rng.random(count) * cumulative[-1]), self.size - 1) + 1


def _flattened(per_category: list[list[str]]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A flat pool plus each category's offset and length in it, for vectorised per-category picks."""
    lengths = np.array([len(items) for items in per_category])
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return [item for items in per_category for item in items], offsets, lengths


def _pick_within(rng, category: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    return offsets[category] + (rng.random(len(category)) * lengths[category]).astype(np.int64)


def build_products(
    seed: int, rng: np.random.Generator, count: int, window_start_us: int, as_of_us: int
) -> tuple[pa.Table, Catalog]:
    shares = np.array([category.share for category in CATEGORIES])
    category = rng.choice(len(CATEGORIES), size=count, p=shares / shares.sum())
    category[: min(count, len(CATEGORIES))] = np.arange(min(count, len(CATEGORIES)))  # every category stocked

    subcategory_names, sub_offsets, sub_lengths = _flattened([list(c.subcategories) for c in CATEGORIES])
    subcategory = _pick_within(rng, category, sub_offsets, sub_lengths)
    nouns_per_subcategory = [nouns for c in CATEGORIES for nouns in c.subcategories.values()]
    nouns, noun_offsets, noun_lengths = _flattened(nouns_per_subcategory)
    noun = _pick_within(rng, subcategory, noun_offsets, noun_lengths)
    brands, brand_offsets, brand_lengths = _flattened([c.brands for c in CATEGORIES])
    brand = _pick_within(rng, category, brand_offsets, brand_lengths)
    adjectives, adjective_offsets, adjective_lengths = _flattened([c.adjectives for c in CATEGORIES])
    adjective = _pick_within(rng, category, adjective_offsets, adjective_lengths)

    median = np.array([c.median_price for c in CATEGORIES])[category]
    sigma = np.array([c.price_sigma for c in CATEGORIES])[category]
    price = np.clip(
        median * np.exp(sigma * rng.standard_normal(count)),
        np.array([c.min_price for c in CATEGORIES])[category],
        np.array([c.max_price for c in CATEGORIES])[category],
    )
    # Indian retail prices end in 9: 1,499 rather than 1,500.
    price_rupees = np.where(price >= 100, np.round(price / 10) * 10 - 1, np.round(price))
    price_paise = (price_rupees * 100).astype(np.int64)
    cost_paise = np.round(price_paise * rng.uniform(0.40, 0.85, count)).astype(np.int64)
    weight_g = np.maximum(
        20, np.array([c.median_weight_g for c in CATEGORIES])[category] * np.exp(0.6 * rng.standard_normal(count))
    ).astype(np.int32)

    created = window_start_us - (rng.random(count) * 540 * US_PER_DAY).astype(np.int64)
    updated = created + (rng.random(count) * (as_of_us - created)).astype(np.int64)
    updated = np.where(rng.random(count) < 0.6, created, updated)  # most listings never edited

    numbers = np.arange(1, count + 1)
    model = col.prefixed_ids("", rng.integers(10, 1000, count), 2)
    table = pa.Table.from_arrays(
        [
            col.prefixed_ids("PROD", numbers, 5),
            col.join(
                col.pick(brands, brand), col.pick(adjectives, adjective), col.pick(nouns, noun), model, separator=" "
            ),
            col.pick([c.name for c in CATEGORIES], category),
            col.pick(subcategory_names, subcategory),
            col.pick(brands, brand),
            col.rupees(price_paise),
            col.rupees(cost_paise),
            col.int32s(weight_g),
            col.timestamps(created),
            col.timestamps(updated),
        ],
        schema=PRODUCTS,
    )
    return table, Catalog(seed=seed, price_paise=price_paise)


def _product_ids(count: int) -> pa.Array:
    return col.prefixed_ids("PROD", np.arange(1, count + 1), 5)


def _warehouses(seed: int, count: int) -> pa.Array:
    return col.pick(WAREHOUSES, keyed_choice(seed, "warehouse", np.arange(1, count + 1), [0.4, 0.35, 0.25]))


def inventory_history(
    seed: int, rng: np.random.Generator, catalog: Catalog, orders_per_day: float, first_day: int, last_day: int
) -> pa.Table:
    """One snapshot row per product per IST day, simulated day by day (vectorised over products)."""
    products = catalog.size
    expected_daily_units = orders_per_day * 2.5 * UNITS_PER_LINE * catalog.popularity
    lead_days = rng.integers(*RESTOCK_LEAD_DAYS, size=products)
    reorder_point = np.ceil(expected_daily_units * lead_days * 1.2 + 3).astype(np.int64)
    stock = reorder_point + np.round(expected_daily_units * rng.uniform(5, 40, products)).astype(np.int64)
    sales_rate = expected_daily_units.copy()
    restock_due = np.full(products, -1)

    days = np.arange(first_day, last_day + 1)
    factors = day_factor(days)
    stock_rows, rate_rows = [], []
    for day_index, factor in enumerate(factors):  # a loop over days; every row of a day is one vector op
        sold = rng.poisson(expected_daily_units * factor)
        stock = np.maximum(stock - sold, 0)
        arrived = restock_due == day_index
        stock = np.where(
            arrived, stock + reorder_point * 3 + np.round(expected_daily_units * 20).astype(np.int64), stock
        )
        restock_due = np.where(arrived, -1, restock_due)
        needs_order = (stock <= reorder_point) & (restock_due < 0)
        restock_due = np.where(needs_order, day_index + lead_days, restock_due)
        sales_rate = 0.8 * sales_rate + 0.2 * sold
        stock_rows.append(stock)
        rate_rows.append(np.round(sales_rate, 2))

    repeat_products = np.tile(np.arange(products), len(days))
    return pa.Table.from_arrays(
        [
            col.dates(np.repeat(days, products)),
            _product_ids(products).take(pa.array(repeat_products)),
            _warehouses(seed, products).take(pa.array(repeat_products)),
            col.int32s(np.concatenate(stock_rows)),
            pa.array(np.concatenate(rate_rows), pa.float64()),
            col.int32s(np.tile(reorder_point, len(days))),
        ],
        schema=INVENTORY,
    )


def inventory_resend(rng: np.random.Generator, latest: pa.Table, elapsed_hours: float, today: int) -> pa.Table:
    """Today's snapshot for every product, moved on from the latest one by the hours since it was sent."""
    stock = latest["stock_level"].to_numpy().astype(np.int64)
    rate = latest["daily_sales_rate"].to_numpy()
    reorder_point = latest["reorder_point"].to_numpy().astype(np.int64)
    fraction_of_day = elapsed_hours / 24.0
    sold = rng.poisson(rate * fraction_of_day * float(day_factor(np.array([today]))[0]))
    stock = np.maximum(stock - sold, 0)
    # A pending purchase order lands with a chance that grows with elapsed time (lead time ~ 4 days).
    restocked = (stock <= reorder_point) & (rng.random(len(stock)) < min(1.0, fraction_of_day / 4.0))
    stock = np.where(restocked, stock + reorder_point * 3 + np.round(rate * 20).astype(np.int64), stock)
    rate = np.round(
        (1 - 0.2 * min(1.0, fraction_of_day)) * rate
        + 0.2 * min(1.0, fraction_of_day) * sold / max(fraction_of_day, 1e-9),
        2,
    )
    return pa.Table.from_arrays(
        [
            col.dates(np.full(len(stock), today)),
            latest["product_id"],
            latest["warehouse_id"],
            col.int32s(stock),
            pa.array(rate, pa.float64()),
            col.int32s(reorder_point),
        ],
        schema=INVENTORY,
    )
