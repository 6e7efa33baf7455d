"""Web and app sessions: a handful of events each, in time order, following a browse-cart-checkout funnel."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from include.vyapar.data.datagen import arrow_columns as col
from include.vyapar.data.datagen.reference_data import (
    BROWSER_SHARE_BY_DEVICE,
    BROWSERS,
    DEVICES,
    EVENT_TYPES,
    PAGE_TYPES,
    UTM_SOURCES,
)
from include.vyapar.data.datagen.schema import CLICKSTREAM
from include.vyapar.data.datagen.seasonality import US_PER_SECOND
from include.vyapar.data.datagen.tables.catalog import Catalog
from include.vyapar.data.datagen.tables.customers import CustomerBase, customer_ids

EVENTS_PER_CHUNK = 1_000_000
ANONYMOUS_SHARE = 0.20
MEAN_SESSION_EVENTS = 6
PAGE_VIEW, PRODUCT_VIEW, CART_ADD, CART_REMOVE, CHECKOUT, PURCHASE = range(6)
HOME, CATEGORY, PRODUCT, SEARCH, CART, CHECKOUT_PAGE, CONFIRMATION = range(7)
# How far down the funnel a session gets: browse only, add to cart, reach checkout, buy.
FUNNEL_DEPTH_SHARES = [0.72, 0.15, 0.06, 0.07]

# Places each session in time given (rng, session count, session durations) -> start times.
StartSampler = Callable[[np.random.Generator, int, np.ndarray], np.ndarray]


def _session_lengths(rng: np.random.Generator, event_count: int) -> np.ndarray:
    lengths = np.zeros(0, dtype=np.int64)
    while lengths.sum() < event_count:
        more = np.minimum(rng.geometric(1 / MEAN_SESSION_EVENTS, event_count // MEAN_SESSION_EVENTS + 16), 40)
        lengths = np.concatenate([lengths, more])
    cumulative = np.cumsum(lengths)
    sessions = int(np.searchsorted(cumulative, event_count)) + 1
    lengths = lengths[:sessions]
    lengths[-1] -= cumulative[sessions - 1] - event_count  # trim the last session to hit the exact count
    return lengths


def build_sessions(
    rng: np.random.Generator,
    event_count: int,
    place_sessions: StartSampler,
    customers: CustomerBase,
    catalog: Catalog,
    first_event_number: int,
    first_session_number: int,
) -> tuple[pa.Table, int]:
    """Exactly `event_count` events grouped into sessions; returns the table and the number of sessions."""
    if event_count == 0:
        return CLICKSTREAM.empty_table(), 0
    lengths = _session_lengths(rng, event_count)
    sessions = len(lengths)
    session_of_event = np.repeat(np.arange(sessions), lengths)
    first_event = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    position = np.arange(event_count) - first_event[session_of_event]
    from_end = lengths[session_of_event] - 1 - position

    gaps = (3 + rng.exponential(45, event_count)) * US_PER_SECOND
    gaps[first_event] = 0
    elapsed = np.cumsum(gaps).astype(np.int64)
    offset = elapsed - elapsed[first_event][session_of_event]
    duration = offset[np.cumsum(lengths) - 1]
    start = place_sessions(rng, sessions, duration)

    device = rng.choice(len(DEVICES), sessions, p=[share for _, share in DEVICES])
    browser_cumulative = np.cumsum(BROWSER_SHARE_BY_DEVICE, axis=1)[device]
    browser = np.minimum((browser_cumulative < rng.random(sessions)[:, None]).sum(axis=1), len(BROWSERS) - 1)
    utm_share = np.array([share for _, share in UTM_SOURCES])
    utm = rng.choice(len(UTM_SOURCES), sessions, p=utm_share / utm_share.sum())
    customer = customers.pick_active(rng, start)
    anonymous = (rng.random(sessions) < ANONYMOUS_SHARE) | (customer == 0)
    focus_product = catalog.pick(rng, sessions)

    depth = rng.choice(4, sessions, p=FUNNEL_DEPTH_SHARES)
    depth = np.minimum(depth, lengths - 1)  # a session needs room for a view before each funnel step
    depth = np.where(anonymous, np.minimum(depth, 2), depth)  # buying needs a login
    removes_from_cart = (depth == 1) & (lengths >= 3) & (rng.random(sessions) < 0.25)

    event_depth = depth[session_of_event]
    browse_roll = rng.random(event_count)
    event_type = np.where((position > 0) & (browse_roll < 0.55), PRODUCT_VIEW, PAGE_VIEW)
    removes = removes_from_cart[session_of_event]
    event_type = np.select(
        [
            (event_depth == 1) & removes & (from_end == 0),
            (event_depth == 1) & removes & (from_end == 1),
            (event_depth == 1) & (from_end == 0),
            (event_depth == 2) & (from_end == 1),
            (event_depth == 2) & (from_end == 0),
            (event_depth == 3) & (from_end == 2),
            (event_depth == 3) & (from_end == 1),
            (event_depth == 3) & (from_end == 0),
        ],
        [CART_REMOVE, CART_ADD, CART_ADD, CART_ADD, CHECKOUT, CART_ADD, CHECKOUT, PURCHASE],
        event_type,
    )
    entry_page = np.array([HOME, CATEGORY, SEARCH])[rng.choice(3, event_count, p=[0.55, 0.25, 0.20])]
    browse_page = np.array([HOME, CATEGORY, SEARCH])[rng.choice(3, event_count, p=[0.20, 0.45, 0.35])]
    page_view_page = np.where(position == 0, entry_page, browse_page)
    page = np.choose(
        event_type,
        [
            page_view_page,
            np.full(event_count, PRODUCT),
            np.full(event_count, PRODUCT),
            np.full(event_count, CART),
            np.full(event_count, CHECKOUT_PAGE),
            np.full(event_count, CONFIRMATION),
        ],
    )
    about_focus = (event_type != PRODUCT_VIEW) | (rng.random(event_count) < 0.5)
    product = np.where(about_focus, focus_product[session_of_event], catalog.pick(rng, event_count))
    no_product = (event_type == PAGE_VIEW) | (event_type == CHECKOUT)

    utm_names = [source or "" for source, _ in UTM_SOURCES]
    table = pa.Table.from_arrays(
        [
            col.prefixed_ids("EVT", np.arange(first_event_number, first_event_number + event_count), 9),
            col.prefixed_ids("SES", first_session_number + session_of_event, 9),
            customer_ids(customer[session_of_event], missing=anonymous[session_of_event]),
            col.timestamps(start[session_of_event] + offset),
            col.pick(EVENT_TYPES, event_type),
            col.pick(PAGE_TYPES, page),
            col.pick(col.prefixed_ids("PROD", np.arange(1, catalog.size + 1), 5), product - 1, missing=no_product),
            col.pick([name for name, _ in DEVICES], device[session_of_event]),
            col.pick(BROWSERS, browser[session_of_event]),
            col.pick(utm_names, utm[session_of_event], missing=(utm == 0)[session_of_event]),
        ],
        schema=CLICKSTREAM,
    )
    return table, sessions
