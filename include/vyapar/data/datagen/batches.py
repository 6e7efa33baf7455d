"""Land the initial history (batch 000000) and then hourly arrivals that continue where the last stopped."""

from __future__ import annotations

import math
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from include.vyapar.data.datagen import landing
from include.vyapar.data.datagen.arrow_columns import id_numbers
from include.vyapar.data.datagen.keyed_random import stream
from include.vyapar.data.datagen.schema import CLICKSTREAM, ORDERS, PRODUCTS, TABLES
from include.vyapar.data.datagen.seasonality import (
    US_PER_DAY,
    US_PER_HOUR,
    US_PER_SECOND,
    activity_weight,
    ist_day_number,
    sample_times,
)
from include.vyapar.data.datagen.tables.catalog import Catalog, build_products, inventory_history, inventory_resend
from include.vyapar.data.datagen.tables.clickstream import EVENTS_PER_CHUNK, build_sessions
from include.vyapar.data.datagen.tables.customers import CustomerBase, build_customers
from include.vyapar.data.datagen.tables.email_marketing import CampaignCalendar
from include.vyapar.data.datagen.tables.orders import (
    ORDER_ACTIVE_SPAN_US,
    build_new_orders,
    reviews_due,
    status_changes,
)

STATE_FORMAT = 1
# Per unit of scale, over the initial history.
CUSTOMERS_PER_SCALE, PRODUCTS_PER_SCALE, ORDERS_PER_SCALE = 5_000, 500, 20_000
EVENTS_PER_SCALE, CAMPAIGNS_PER_SCALE = 100_000, 24
MIN_PRODUCTS, MIN_CAMPAIGNS, MIN_CUSTOMERS = 30, 5, 20
SIGNED_UP_BEFORE_WINDOW = 0.30
LATE_EVENT_SHARE, DUPLICATE_EVENT_SHARE = 0.05, 0.005
LATE_EVENT_AGE_HOURS = (2, 10)
BEGINNING_OF_TIME_US = -(2**62)
EMAIL_EVENTS_PER_CAMPAIGN_ESTIMATE = 1_700


def _utc_naive(moment: datetime | str | None) -> datetime:
    if moment is None:
        return datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _micros(moment: datetime) -> int:
    return round((moment - datetime(1970, 1, 1)).total_seconds() * 1_000_000)


def _from_micros(micros: int) -> datetime:
    return datetime(1970, 1, 1) + timedelta(microseconds=int(micros))


class _Progress:
    """A tqdm bar on stderr counting rows written, or nothing when quiet."""

    def __init__(self, enabled: bool, description: str, total_rows: int | None = None):
        self.bar = tqdm(
            total=total_rows,
            desc=description,
            unit=" rows",
            unit_scale=True,
            file=sys.stderr,
            disable=not enabled,
            dynamic_ncols=True,
        )

    def stage(self, name: str) -> None:
        self.bar.set_postfix_str(f"building {name}")

    def tables(self, table: str, chunks):
        self.bar.set_postfix_str(table)
        for chunk in chunks:
            self.bar.update(len(chunk))
            yield chunk

    def finish(self):
        self.bar.total = self.bar.n  # the starting total was an estimate
        self.bar.set_postfix_str("done")
        self.bar.close()


def _write(
    landing_dir: Path, batch_number: int, loaded_at_us: int, progress: _Progress, tables: dict[str, object]
) -> dict[str, int]:
    """Write every table for a batch, parents first; a value is a table or an iterator of chunks."""
    rows = {}
    for table in TABLES:
        content = tables[table]
        chunks = [content] if isinstance(content, pa.Table) else content
        rows[table] = landing.write_batch_file(
            landing_dir, table, batch_number, progress.tables(table, chunks), loaded_at_us
        )
    return rows


def generate_initial(
    landing_dir: Path | str,
    scale: float = 1.0,
    seed: int = 42,
    as_of: datetime | str | None = None,
    days: int = 90,
    force: bool = False,
    progress: bool = True,
) -> dict[str, int]:
    """Land `days` of history ending at `as_of` as batch 000000; returns rows per table."""
    landing_dir = Path(landing_dir)
    if scale <= 0 or days < 1:
        raise ValueError("scale must be positive and days at least 1")
    if landing.holds_data(landing_dir):
        if not force:
            raise landing.LandingNotEmptyError(
                f"{landing_dir} already holds landed data; pass force=True (--force) to wipe it and start over."
            )
        landing.wipe(landing_dir)
    as_of_dt = _utc_naive(as_of)
    now_us = _micros(as_of_dt)
    window_start_us = now_us - days * US_PER_DAY

    customer_count = max(MIN_CUSTOMERS, round(CUSTOMERS_PER_SCALE * scale))
    product_count = max(MIN_PRODUCTS, round(PRODUCTS_PER_SCALE * scale))
    order_count = round(ORDERS_PER_SCALE * scale)
    event_count = round(EVENTS_PER_SCALE * scale)
    campaign_count = max(MIN_CAMPAIGNS, round(CAMPAIGNS_PER_SCALE * scale))

    # Each table is written as soon as it is built and then dropped, to keep peak memory down at scale 100.
    bar = _Progress(
        progress,
        f"init scale={scale:g}",
        total_rows=round(
            customer_count
            + product_count * (1 + days)
            + order_count * 5.2
            + campaign_count * EMAIL_EVENTS_PER_CAMPAIGN_ESTIMATE
            + event_count
        ),
    )
    rows: dict[str, int] = {}

    def land(table: str, content) -> None:
        chunks = [content] if isinstance(content, pa.Table) else content
        rows[table] = landing.write_batch_file(landing_dir, table, 0, bar.tables(table, chunks), now_us)

    bar.stage("customers")
    rng = stream(seed, 0, "customers")
    signed_up_before = max(1, round(SIGNED_UP_BEFORE_WINDOW * customer_count))  # someone can order on day one
    signup_us = np.sort(
        np.concatenate(
            [
                window_start_us - 1 - (rng.random(signed_up_before) * 730 * US_PER_DAY).astype(np.int64),
                sample_times(rng, window_start_us, now_us, customer_count - signed_up_before),
            ]
        )
    )
    customers = CustomerBase(seed, signup_us)
    land("customers", build_customers(seed, rng, 1, signup_us, now_us))
    bar.stage("products")
    product_table, catalog = build_products(seed, stream(seed, 0, "products"), product_count, window_start_us, now_us)
    land("products", product_table)
    del product_table
    calendar = CampaignCalendar(seed, window_start_us, (days * US_PER_DAY) // campaign_count, CUSTOMERS_PER_SCALE)
    land("email_campaigns", calendar.campaigns_created(BEGINNING_OF_TIME_US, now_us))

    bar.stage("orders")
    purchase_us = sample_times(stream(seed, 0, "order_times"), window_start_us, now_us, order_count)
    next_numbers = {
        "customer": customer_count + 1,
        "order": 1,
        "order_item": 1,
        "payment": 1,
        "session": 1,
        "event": 1,
        "review": 1,
        "email_event": 1,
    }
    new_orders = build_new_orders(
        seed, stream(seed, 0, "orders"), purchase_us, customers, catalog, next_numbers, now_us
    )
    land("orders", new_orders.orders)
    land("order_items", new_orders.order_items)
    land("payments", new_orders.payments)
    bar.stage("reviews")
    reviews = reviews_due(
        seed,
        new_orders.item_numbers,
        new_orders.item_order_numbers,
        new_orders.item_product_numbers,
        new_orders.item_customer_numbers,
        new_orders.item_purchase_us,
        BEGINNING_OF_TIME_US,
        now_us,
        1,
    )
    del new_orders
    next_numbers["review"] += len(reviews)
    land("product_reviews", reviews)
    del reviews

    bar.stage("inventory")
    last_day = int(ist_day_number(np.array([now_us]))[0])
    land(
        "inventory",
        inventory_history(
            seed, stream(seed, 0, "inventory"), catalog, order_count / days, last_day - days + 1, last_day
        ),
    )
    bar.stage("email events")
    land("email_events", calendar.events_between(customers, BEGINNING_OF_TIME_US, now_us, 1))
    next_numbers["email_event"] += rows["email_events"]

    def clickstream_chunks():
        for chunk_number in range(math.ceil(event_count / EVENTS_PER_CHUNK)):
            size = min(EVENTS_PER_CHUNK, event_count - chunk_number * EVENTS_PER_CHUNK)

            def place(rng, sessions, duration):
                return np.minimum(sample_times(rng, window_start_us, now_us, sessions), now_us - duration)

            table, sessions = build_sessions(
                stream(seed, 0, f"clickstream_chunk_{chunk_number}"),
                size,
                place,
                customers,
                catalog,
                next_numbers["event"],
                next_numbers["session"],
            )
            next_numbers["event"] += size
            next_numbers["session"] += sessions
            yield table

    land("clickstream", clickstream_chunks())
    bar.finish()

    landing.write_batch_ledger(landing_dir, 0, rows, now_us)
    history_activity = activity_weight(window_start_us, now_us)
    landing.write_state(
        landing_dir,
        {
            "format": STATE_FORMAT,
            "seed": seed,
            "scale": scale,
            "days": days,
            "window_start": _from_micros(window_start_us).isoformat(),
            "as_of": as_of_dt.isoformat(),
            "clock": as_of_dt.isoformat(),
            "next_batch": 1,
            "next_numbers": next_numbers,
            # Expected arrivals per 'average hour' of shopper activity, so hourly batches match the history's pace.
            "per_activity_hour": {
                "customers": (customer_count - signed_up_before) / history_activity,
                "orders": order_count / history_activity,
                "events": event_count / history_activity,
            },
            "campaign_calendar": {
                "window_start_us": window_start_us,
                "gap_us": calendar.gap_us,
                "audience_base": calendar.audience_base,
            },
        },
    )
    return rows


def land_next_batch(
    landing_dir: Path | str, at: datetime | str | None = None, hours: int = 1, progress: bool = False
) -> dict:
    """Append `hours` hourly batches after the last one, or one batch arriving exactly `at`.

    Returns the batch id (the last one when several), all batch ids, the arrival time and rows per table.
    """
    landing_dir = Path(landing_dir)
    if hours < 1:
        raise ValueError("hours must be at least 1")
    if at is not None and hours != 1:
        raise ValueError("give either an explicit arrival time or a number of hours, not both")
    state = landing.read_state(landing_dir)
    clock = datetime.fromisoformat(state["clock"])
    arrivals = [_utc_naive(at)] if at is not None else [clock + timedelta(hours=h) for h in range(1, hours + 1)]
    if arrivals[0] <= clock:
        raise ValueError(f"arrival time {arrivals[0].isoformat()} must be after the last batch at {clock.isoformat()}")

    totals = dict.fromkeys(TABLES, 0)
    batch_ids = []
    for arrival in arrivals:
        rows = _land_one(landing_dir, state, arrival, progress)
        batch_ids.append(landing.batch_id(state["next_batch"] - 1))
        for table, count in rows.items():
            totals[table] += count
    return {"batch_id": batch_ids[-1], "batch_ids": batch_ids, "loaded_at": arrivals[-1].isoformat(), "rows": totals}


def _land_one(landing_dir: Path, state: dict, arrival: datetime, progress: bool) -> dict[str, int]:
    seed, batch_number = state["seed"], state["next_batch"]
    previous_us, now_us = _micros(datetime.fromisoformat(state["clock"])), _micros(arrival)
    next_numbers = dict(state["next_numbers"])
    pace = state["per_activity_hour"]
    activity = activity_weight(previous_us + 1, now_us + 1)

    def rng(purpose: str) -> np.random.Generator:
        return stream(seed, batch_number, purpose)

    existing = landing.query(
        landing_dir, "select epoch_us(signup_at) as signup_us from {customers} order by customer_id"
    )
    new_signups = sample_times(
        rng("customers"), previous_us + 1, now_us + 1, int(rng("customer_count").poisson(pace["customers"] * activity))
    )
    customers = CustomerBase(seed, np.concatenate([existing["signup_us"].to_numpy(), new_signups]))
    new_customers = build_customers(seed, rng("customers"), next_numbers["customer"], new_signups, now_us)
    next_numbers["customer"] += len(new_signups)

    prices = landing.query(landing_dir, "select price from {products} order by product_id")["price"].to_numpy()
    catalog = Catalog(seed, np.round(prices * 100).astype(np.int64))

    purchase_us = sample_times(
        rng("order_times"), previous_us + 1, now_us + 1, int(rng("order_count").poisson(pace["orders"] * activity))
    )
    new_orders = build_new_orders(seed, rng("orders"), purchase_us, customers, catalog, next_numbers, now_us)
    recent = landing.query(
        landing_dir,
        """
        select distinct order_id, customer_id, epoch_us(order_purchase_timestamp) as purchase_us
        from {orders} where order_purchase_timestamp > make_timestamp($since) order by order_id
    """,
        since=now_us - ORDER_ACTIVE_SPAN_US,
    )
    recent_numbers = id_numbers(recent["order_id"], 3)
    recent_customers = id_numbers(recent["customer_id"], 4)
    moved = status_changes(
        seed, recent_numbers, recent_customers, recent["purchase_us"].to_numpy(), previous_us, now_us
    )
    orders = pa.concat_tables([moved, new_orders.orders]).cast(ORDERS)

    recent_items = landing.query(
        landing_dir,
        """
        select i.order_item_id, i.order_id, i.product_id, o.customer_id, epoch_us(o.order_purchase_timestamp) as purchase_us
        from {order_items} as i
        join (select distinct order_id, customer_id, order_purchase_timestamp from {orders}
              where order_purchase_timestamp > make_timestamp($since)) as o using (order_id)
        order by i.order_item_id
    """,
        since=now_us - ORDER_ACTIVE_SPAN_US,
    )
    reviews = reviews_due(
        seed,
        np.concatenate([id_numbers(recent_items["order_item_id"], 2), new_orders.item_numbers]),
        np.concatenate([id_numbers(recent_items["order_id"], 3), new_orders.item_order_numbers]),
        np.concatenate([id_numbers(recent_items["product_id"], 4), new_orders.item_product_numbers]),
        np.concatenate([id_numbers(recent_items["customer_id"], 4), new_orders.item_customer_numbers]),
        np.concatenate([recent_items["purchase_us"].to_numpy(), new_orders.item_purchase_us]),
        previous_us,
        now_us,
        next_numbers["review"],
    )
    next_numbers["review"] += len(reviews)

    latest_stock = landing.query(
        landing_dir,
        """
        select product_id, warehouse_id, stock_level, daily_sales_rate, reorder_point from {inventory}
        qualify row_number() over (partition by product_id order by snapshot_date desc, _loaded_at desc) = 1
        order by product_id
    """,
    )
    inventory = inventory_resend(
        rng("inventory"), latest_stock, (now_us - previous_us) / US_PER_HOUR, int(ist_day_number(np.array([now_us]))[0])
    )

    calendar_settings = state["campaign_calendar"]
    calendar = CampaignCalendar(
        seed, calendar_settings["window_start_us"], calendar_settings["gap_us"], calendar_settings["audience_base"]
    )
    email_events = calendar.events_between(customers, previous_us, now_us, next_numbers["email_event"])
    next_numbers["email_event"] += len(email_events)

    clickstream = _arriving_clickstream(
        landing_dir, state, rng, customers, catalog, next_numbers, previous_us, now_us, activity
    )

    bar = _Progress(progress, f"batch {landing.batch_id(batch_number)}")
    rows = _write(
        landing_dir,
        batch_number,
        now_us,
        bar,
        {
            "customers": new_customers,
            "products": PRODUCTS.empty_table(),  # the catalogue only lands with the initial history
            "email_campaigns": calendar.campaigns_created(previous_us, now_us),
            "orders": orders,
            "order_items": new_orders.order_items,
            "payments": new_orders.payments,
            "product_reviews": reviews,
            "inventory": inventory,
            "email_events": email_events,
            "clickstream": clickstream,
        },
    )
    bar.finish()
    landing.write_batch_ledger(landing_dir, batch_number, rows, now_us)
    state.update(clock=arrival.isoformat(), next_batch=batch_number + 1, next_numbers=next_numbers)
    landing.write_state(landing_dir, state)
    return rows


def _arriving_clickstream(
    landing_dir, state, rng, customers, catalog, next_numbers, previous_us, now_us, activity
) -> pa.Table:
    """The past hour's events, ~5% late events from 2-10 hours ago, and ~0.5% re-sent duplicates."""
    regular_count = int(rng("event_count").poisson(state["per_activity_hour"]["events"] * activity))
    late_count = max(1, round(LATE_EVENT_SHARE * regular_count))
    youngest_late_us = now_us - LATE_EVENT_AGE_HOURS[0] * US_PER_HOUR
    oldest_late_us = now_us - LATE_EVENT_AGE_HOURS[1] * US_PER_HOUR

    def place_regular(generator, sessions, duration):
        # The extractor only sees sessions whose last event is already in the past.
        return np.minimum(
            sample_times(generator, previous_us + 1, now_us + 1, sessions), now_us - duration - US_PER_SECOND
        )

    def place_late(generator, sessions, duration):
        start = sample_times(generator, oldest_late_us, youngest_late_us, sessions)
        return np.maximum(np.minimum(start, youngest_late_us - duration), oldest_late_us)

    parts = []
    for purpose, count, place in (
        ("clickstream", regular_count, place_regular),
        ("clickstream_late", late_count, place_late),
    ):
        table, sessions = build_sessions(
            rng(purpose), count, place, customers, catalog, next_numbers["event"], next_numbers["session"]
        )
        next_numbers["event"] += count
        next_numbers["session"] += sessions
        parts.append(table)
    fresh = pa.concat_tables(parts)

    # The source re-sends a few events: some from this delivery, some from the previous one.
    duplicates = max(1, round(DUPLICATE_EVENT_SHARE * len(fresh)))
    picker = rng("clickstream_duplicates")
    previous_file = landing.batch_path(landing_dir, "clickstream", state["next_batch"] - 1)
    previous = CLICKSTREAM.empty_table()
    if previous_file.exists():
        parquet = pq.ParquetFile(previous_file)
        if parquet.metadata.num_rows:
            previous = parquet.read_row_group(parquet.num_row_groups - 1, columns=CLICKSTREAM.names)
    from_previous = min(duplicates // 2, len(previous))
    resent = [fresh.take(picker.integers(0, len(fresh), duplicates - from_previous))]
    if from_previous:
        resent.append(previous.take(picker.integers(0, len(previous), from_previous)).cast(CLICKSTREAM))
    return pa.concat_tables([fresh, *resent])
