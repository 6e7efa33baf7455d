"""Orders with their items and payments, each order's status lifecycle, and reviews of delivered items.

An order's lifecycle (approve, ship, deliver, cancel, return times) is a keyed-random function of its
number and purchase time, so a later batch recomputes it to re-emit exactly the orders whose status moved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from include.vyapar.data.datagen import arrow_columns as col
from include.vyapar.data.datagen.keyed_random import keyed_choice, keyed_uniform
from include.vyapar.data.datagen.reference_data import ORDER_STATUSES, PAYMENT_TYPES, REVIEW_TITLES
from include.vyapar.data.datagen.schema import ORDER_ITEMS, ORDERS, PAYMENTS, PRODUCT_REVIEWS
from include.vyapar.data.datagen.seasonality import US_PER_DAY, US_PER_HOUR, US_PER_SECOND, ist_day_number
from include.vyapar.data.datagen.tables.catalog import Catalog
from include.vyapar.data.datagen.tables.customers import CustomerBase, customer_ids

CREATED, APPROVED, SHIPPED, DELIVERED, CANCELLED, RETURNED = range(6)
CANCEL_SHARE, RETURN_SHARE, REVIEW_SHARE = 0.05, 0.03, 0.30
# Longest time from purchase to the last thing that can happen to an order (a return or a review).
ORDER_ACTIVE_SPAN_US = 45 * US_PER_DAY
FREE_SHIPPING_FROM_PAISE, SHIPPING_PAISE = 49_900, 4_000


def order_ids(numbers: np.ndarray) -> pa.Array:
    return col.prefixed_ids("ORD", numbers, 7)


def product_ids(numbers: np.ndarray) -> pa.Array:
    return col.prefixed_ids("PROD", numbers, 5)


@dataclass
class Lifecycle:
    purchase_us: np.ndarray
    ends_cancelled: np.ndarray
    ends_returned: np.ndarray
    approve_us: np.ndarray
    cancel_us: np.ndarray
    ship_us: np.ndarray
    deliver_us: np.ndarray
    return_us: np.ndarray

    @classmethod
    def of(cls, seed: int, order_numbers: np.ndarray, purchase_us: np.ndarray) -> Lifecycle:
        def draw(purpose: str) -> np.ndarray:
            return keyed_uniform(seed, purpose, order_numbers)

        outcome = draw("order_outcome")
        approve = purchase_us + 60 * US_PER_SECOND + (-np.log1p(-draw("approve_delay")) * 40 * 60 * US_PER_SECOND)
        ship = approve + (8 + 64 * draw("ship_delay")) * US_PER_HOUR
        deliver = ship + (1 + 6 * draw("deliver_delay") ** 1.5) * US_PER_DAY
        return cls(
            purchase_us=purchase_us,
            ends_cancelled=outcome < CANCEL_SHARE,
            ends_returned=(outcome >= CANCEL_SHARE) & (outcome < CANCEL_SHARE + RETURN_SHARE),
            approve_us=approve.astype(np.int64),
            cancel_us=(purchase_us + (0.3 + 40 * draw("cancel_delay")) * US_PER_HOUR).astype(np.int64),
            ship_us=ship.astype(np.int64),
            deliver_us=deliver.astype(np.int64),
            return_us=(deliver + (2 + 8 * draw("return_delay")) * US_PER_DAY).astype(np.int64),
        )

    def status_at(self, at_us: int) -> tuple[np.ndarray, np.ndarray]:
        """Status code and the time it was reached, as seen at `at_us`."""
        cancelled_path = self.ends_cancelled
        status = np.select(
            [
                cancelled_path & (at_us >= self.cancel_us),
                cancelled_path & (at_us >= self.approve_us) & (self.approve_us < self.cancel_us),
                cancelled_path,
                self.ends_returned & (at_us >= self.return_us),
                at_us >= self.deliver_us,
                at_us >= self.ship_us,
                at_us >= self.approve_us,
            ],
            [CANCELLED, APPROVED, CREATED, RETURNED, DELIVERED, SHIPPED, APPROVED],
            CREATED,
        )
        reached = np.choose(
            status, [self.purchase_us, self.approve_us, self.ship_us, self.deliver_us, self.cancel_us, self.return_us]
        )
        return status, reached

    def estimated_delivery_day(self, seed: int, order_numbers: np.ndarray) -> np.ndarray:
        return ist_day_number(self.purchase_us) + 4 + (keyed_uniform(seed, "promised_days", order_numbers) * 6)


def order_rows(
    seed: int, order_numbers: np.ndarray, customer_numbers: np.ndarray, purchase_us: np.ndarray, at_us: int
) -> pa.Table:
    """Each order as it looks at `at_us`."""
    lifecycle = Lifecycle.of(seed, order_numbers, purchase_us)
    status, reached = lifecycle.status_at(at_us)
    approved = (lifecycle.approve_us <= at_us) & ~(
        lifecycle.ends_cancelled & (lifecycle.cancel_us <= lifecycle.approve_us)
    )
    delivered = (status == DELIVERED) | (status == RETURNED)
    return pa.Table.from_arrays(
        [
            order_ids(order_numbers),
            customer_ids(customer_numbers),
            col.pick(ORDER_STATUSES, status),
            col.timestamps(purchase_us),
            col.timestamps(lifecycle.approve_us, missing=~approved),
            col.timestamps(lifecycle.deliver_us, missing=~delivered),
            col.dates(lifecycle.estimated_delivery_day(seed, order_numbers).astype(np.int64)),
            col.timestamps(reached),
        ],
        schema=ORDERS,
    )


def status_changes(
    seed: int,
    order_numbers: np.ndarray,
    customer_numbers: np.ndarray,
    purchase_us: np.ndarray,
    previous_us: int,
    now_us: int,
) -> pa.Table:
    """Full rows, as of now, of the orders whose status moved since the previous arrival."""
    lifecycle = Lifecycle.of(seed, order_numbers, purchase_us)
    moved = lifecycle.status_at(previous_us)[0] != lifecycle.status_at(now_us)[0]
    return order_rows(seed, order_numbers[moved], customer_numbers[moved], purchase_us[moved], now_us)


@dataclass
class NewOrders:
    orders: pa.Table
    order_items: pa.Table
    payments: pa.Table
    # Item-level arrays reviews are derived from.
    item_numbers: np.ndarray
    item_order_numbers: np.ndarray
    item_product_numbers: np.ndarray
    item_customer_numbers: np.ndarray
    item_purchase_us: np.ndarray


def build_new_orders(
    seed: int,
    rng: np.random.Generator,
    purchase_us: np.ndarray,
    customers: CustomerBase,
    catalog: Catalog,
    next_numbers: dict[str, int],
    now_us: int,
) -> NewOrders:
    """Orders placed at the given times, with lines and payments; advances `next_numbers` in place."""
    count = len(purchase_us)
    order_numbers = np.arange(next_numbers["order"], next_numbers["order"] + count)
    customer_numbers = customers.pick_active(rng, purchase_us)

    lines = 1 + np.minimum(rng.poisson(1.5, count), 7)
    line_count = int(lines.sum())
    first_line = np.concatenate([[0], np.cumsum(lines)[:-1]]).astype(np.int64)
    order_of_line = np.repeat(np.arange(count), lines)
    line_number = np.arange(line_count) - first_line[order_of_line] + 1
    item_numbers = np.arange(next_numbers["order_item"], next_numbers["order_item"] + line_count)

    product = catalog.pick(rng, line_count)
    quantity = rng.choice(np.arange(1, 6), size=line_count, p=[0.8, 0.12, 0.05, 0.02, 0.01])
    list_price = catalog.price_paise[product - 1]
    on_sale = rng.random(line_count) < 0.15
    unit_price = np.where(on_sale, np.round(list_price * rng.uniform(0.80, 0.95, line_count)), list_price)
    unit_price = unit_price.astype(np.int64)
    couponed = rng.random(line_count) < 0.2
    discount = np.where(couponed, np.round(quantity * unit_price * rng.uniform(0.05, 0.25, line_count)), 0)
    discount = discount.astype(np.int64)
    line_net = quantity * unit_price - discount
    subtotal = np.add.reduceat(line_net, first_line) if count else np.zeros(0, np.int64)
    order_shipping = np.where(subtotal < FREE_SHIPPING_FROM_PAISE, SHIPPING_PAISE, 0)
    shipping = np.where(line_number == 1, order_shipping[order_of_line], 0)

    items = pa.Table.from_arrays(
        [
            col.prefixed_ids("OI", item_numbers, 8),
            order_ids(order_numbers[order_of_line]),
            col.int32s(line_number),
            product_ids(product),
            col.int32s(quantity),
            col.rupees(unit_price),
            col.rupees(discount),
            col.rupees(shipping),
        ],
        schema=ORDER_ITEMS,
    )

    payments = _payments(rng, order_numbers, purchase_us, subtotal + order_shipping, next_numbers["payment"])
    next_numbers["order"] += count
    next_numbers["order_item"] += line_count
    next_numbers["payment"] += len(payments)
    return NewOrders(
        orders=order_rows(seed, order_numbers, customer_numbers, purchase_us, now_us),
        order_items=items,
        payments=payments,
        item_numbers=item_numbers,
        item_order_numbers=order_numbers[order_of_line],
        item_product_numbers=product,
        item_customer_numbers=customer_numbers[order_of_line],
        item_purchase_us=purchase_us[order_of_line],
    )


def _payments(
    rng: np.random.Generator,
    order_numbers: np.ndarray,
    purchase_us: np.ndarray,
    total_paise: np.ndarray,
    first_payment_number: int,
) -> pa.Table:
    """One payment per order, or a wallet part plus the rest; the parts sum to the order total exactly."""
    count = len(order_numbers)
    type_names = [name for name, _ in PAYMENT_TYPES]
    shares = np.array([share for _, share in PAYMENT_TYPES])
    main_type = rng.choice(len(type_names), count, p=shares / shares.sum())
    wallet, upi, cod = type_names.index("wallet"), type_names.index("upi"), type_names.index("cod")
    split = (rng.random(count) < 0.08) & (main_type != cod) & (total_paise >= 200)
    main_type = np.where(split & (main_type == wallet), upi, main_type)
    wallet_part = np.where(split, np.floor(total_paise * rng.uniform(0.1, 0.6, count)), 0).astype(np.int64)

    parts = 1 + split.astype(np.int64)
    order_index = np.repeat(np.arange(count), parts)
    is_second = np.zeros(len(order_index), dtype=bool)
    is_second[1:] = order_index[1:] == order_index[:-1]
    has_wallet_part = split[order_index] & ~is_second  # the wallet balance is applied first
    value = np.where(has_wallet_part, wallet_part[order_index], total_paise[order_index] - wallet_part[order_index])
    payment_type = np.where(has_wallet_part, wallet, main_type[order_index])
    credit = payment_type == type_names.index("credit_card")
    installments = np.where(credit, rng.choice([1, 1, 1, 3, 6, 9, 12], len(order_index)), 1)
    paid = purchase_us[order_index] + (rng.integers(5, 300, len(order_index)) + 20 * is_second) * US_PER_SECOND

    return pa.Table.from_arrays(
        [
            col.prefixed_ids("PAY", np.arange(first_payment_number, first_payment_number + len(order_index)), 7),
            order_ids(order_numbers[order_index]),
            col.int32s(1 + is_second),
            col.pick(type_names, payment_type),
            col.int32s(installments),
            col.rupees(value),
            col.timestamps(paid),
        ],
        schema=PAYMENTS,
    )


_SCORE_SHARES_DELIVERED = [0.05, 0.05, 0.10, 0.28, 0.52]
_SCORE_SHARES_RETURNED = [0.35, 0.25, 0.20, 0.12, 0.08]


def reviews_due(
    seed: int,
    item_numbers: np.ndarray,
    order_numbers: np.ndarray,
    product_numbers: np.ndarray,
    customer_numbers: np.ndarray,
    purchase_us: np.ndarray,
    after_us: int,
    until_us: int,
    first_review_number: int,
) -> pa.Table:
    """Reviews written in (after, until]: about 30% of delivered items, some days after delivery."""
    lifecycle = Lifecycle.of(seed, order_numbers, purchase_us)
    written_us = (
        lifecycle.deliver_us + (0.5 + 13.5 * keyed_uniform(seed, "review_delay", item_numbers)) * US_PER_DAY
    ).astype(np.int64)
    due = (
        (keyed_uniform(seed, "reviewed", item_numbers) < REVIEW_SHARE)
        & ~lifecycle.ends_cancelled
        & (written_us > after_us)
        & (written_us <= until_us)
    )
    order = np.lexsort((item_numbers[due], written_us[due]))
    picked = np.flatnonzero(due)[order]
    items = item_numbers[picked]

    score = (
        np.where(
            lifecycle.ends_returned[picked],
            keyed_choice(seed, "review_score_returned", items, _SCORE_SHARES_RETURNED),
            keyed_choice(seed, "review_score", items, _SCORE_SHARES_DELIVERED),
        )
        + 1
    )
    titles = [title for s in range(1, 6) for title in REVIEW_TITLES[s]]
    lengths = np.array([len(REVIEW_TITLES[s]) for s in range(1, 6)])
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    title = offsets[score - 1] + (keyed_uniform(seed, "review_title", items) * lengths[score - 1]).astype(np.int64)

    return pa.Table.from_arrays(
        [
            col.prefixed_ids("REV", np.arange(first_review_number, first_review_number + len(picked)), 7),
            order_ids(order_numbers[picked]),
            product_ids(product_numbers[picked]),
            customer_ids(customer_numbers[picked]),
            col.int32s(score),
            col.pick(titles, title),
            col.timestamps(written_us[picked]),
        ],
        schema=PRODUCT_REVIEWS,
    )
