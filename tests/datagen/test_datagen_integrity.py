"""Generated data hangs together: keys resolve, money adds up, places and timelines are plausible."""

from __future__ import annotations

import pytest

from include.vyapar.data.datagen.reference_data import CITIES
from tests.datagen.conftest import landed_views, scalar

FOREIGN_KEYS = [
    ("orders", "customer_id", "customers", "customer_id"),
    ("order_items", "order_id", "orders", "order_id"),
    ("order_items", "product_id", "products", "product_id"),
    ("payments", "order_id", "orders", "order_id"),
    ("clickstream", "customer_id", "customers", "customer_id"),
    ("clickstream", "product_id", "products", "product_id"),
    ("inventory", "product_id", "products", "product_id"),
    ("product_reviews", "order_id", "orders", "order_id"),
    ("product_reviews", "product_id", "products", "product_id"),
    ("product_reviews", "customer_id", "customers", "customer_id"),
    ("email_events", "campaign_id", "email_campaigns", "campaign_id"),
    ("email_events", "customer_id", "customers", "customer_id"),
]


@pytest.fixture(scope="module", params=["history", "with_arrivals"])
def db(request):
    return landed_views(request.getfixturevalue(request.param))


@pytest.mark.parametrize(("child", "column", "parent", "key"), FOREIGN_KEYS)
def test_foreign_keys_resolve(db, child, column, parent, key):
    dangling = f"""select count(*) from {child} c where c.{column} is not null
                   and not exists (select 1 from {parent} p where p.{key} = c.{column})"""
    assert scalar(db, dangling) == 0


def test_payments_sum_to_order_totals(db):
    mismatched = """
        with items as (select order_id, sum(quantity * unit_price - discount_amount + shipping_charge) as total
                       from order_items group by order_id),
             paid as (select order_id, sum(payment_value) as total, count(*) as parts from payments group by order_id)
        select count(*) from items full join paid using (order_id)
        where paid.total is null or items.total is null or round(items.total, 2) <> round(paid.total, 2)"""
    assert scalar(db, mismatched) == 0
    assert scalar(db, "select max(payment_sequential) from payments") == 2
    assert scalar(db, "select count(*) from payments where payment_value <> round(payment_value, 2)") == 0


def test_money_is_positive_and_cost_below_price(db):
    assert scalar(db, "select count(*) from products where not (cost < price and cost >= 0.4 * price - 0.01)") == 0
    assert (
        scalar(
            db,
            "select count(*) from order_items where discount_amount < 0 "
            "or quantity * unit_price - discount_amount < 0 or quantity not between 1 and 5",
        )
        == 0
    )


def test_cities_match_states(db):
    pairs = {(city, state) for city, state, *_ in CITIES}
    prefixes = {city: str(prefix) for city, _, prefix, _ in CITIES}
    for city, state, zip_code in db.sql(
        "select customer_city, customer_state, customer_zip_code from customers"
    ).fetchall():
        assert (city, state) in pairs
        assert zip_code.startswith(prefixes[city])


def test_line_numbers_count_up_within_each_order(db):
    gaps = """select count(*) from (select order_id, count(*) n, min(line_number) lo, max(line_number) hi
              from order_items group by order_id) where lo <> 1 or hi <> n"""
    assert scalar(db, gaps) == 0
    assert 2.2 < scalar(db, "select count(*) / count(distinct order_id) from order_items") < 2.8


def test_order_statuses_follow_their_timeline(db):
    latest = "(select * from orders qualify row_number() over (partition by order_id order by _loaded_at desc) = 1)"
    shares = dict(db.sql(f"select order_status, count(*) / sum(count(*)) over () from {latest} group by 1").fetchall())
    assert 0.03 < shares["cancelled"] < 0.07 and 0.01 < shares["returned"] < 0.05 and shares["delivered"] > 0.7
    assert (
        scalar(
            db,
            f"""select count(*) from {latest} where (order_delivered_timestamp is not null)
                          <> (order_status in ('delivered', 'returned'))""",
        )
        == 0
    )
    assert (
        scalar(
            db,
            f"""select count(*) from {latest} where order_approved_at < order_purchase_timestamp
                          or order_delivered_timestamp < order_approved_at or updated_at > _loaded_at""",
        )
        == 0
    )


def test_reviews_follow_delivery_and_lean_positive(db):
    early = """select count(*) from product_reviews r join orders o using (order_id)
               where o.order_delivered_timestamp is not null and r.review_created_at <= o.order_delivered_timestamp"""
    assert scalar(db, early) == 0
    assert (
        scalar(
            db,
            "select count(*) from product_reviews r join orders o using (order_id) "
            "where o.customer_id <> r.customer_id",
        )
        == 0
    )
    assert scalar(db, "select avg(review_score) from product_reviews") > 3.7


def test_email_trails_start_with_sent_after_the_campaign(db):
    out_of_order = """select count(*) from (
        select campaign_id, customer_id, list(event_type order by event_timestamp, email_event_id) as trail
        from email_events group by all) where trail[1] <> 'sent'"""
    assert scalar(db, out_of_order) == 0
    assert (
        scalar(
            db,
            "select count(*) from email_events e join email_campaigns c using (campaign_id) "
            "where e.event_timestamp < c.sent_at",
        )
        == 0
    )
    assert (
        scalar(
            db,
            "select count(*) - count(distinct (campaign_id, customer_id)) from email_events where event_type = 'sent'",
        )
        == 0
    )


def test_clickstream_funnel_and_audience(db):
    counts = dict(db.sql("select event_type, count(*) from clickstream group by 1").fetchall())
    assert counts["product_view"] > 5 * counts["cart_add"] > 5 * counts["purchase"] > 0
    anonymous = scalar(db, "select avg((customer_id is null)::int) from clickstream")
    assert 0.15 < anonymous < 0.30
    assert scalar(db, "select avg((device = 'mobile')::int) from clickstream") > 0.5
    product_rule = """select count(*) from clickstream where (product_id is null)
                      <> (event_type in ('page_view', 'checkout'))"""
    assert scalar(db, product_rule) == 0


def test_known_visitors_and_buyers_had_signed_up(db):
    assert (
        scalar(
            db,
            "select count(*) from clickstream c join customers u using (customer_id) "
            "where u.signup_at > c.event_timestamp",
        )
        == 0
    )
    assert (
        scalar(
            db,
            "select count(*) from orders o join customers u using (customer_id) "
            "where u.signup_at > o.order_purchase_timestamp",
        )
        == 0
    )


def test_inventory_has_one_warehouse_per_product_and_some_stockouts(db):
    assert (
        scalar(
            db,
            "select count(*) from (select product_id from inventory "
            "group by 1 having count(distinct warehouse_id) > 1)",
        )
        == 0
    )
    assert scalar(db, "select count(*) from inventory where stock_level < 0 or daily_sales_rate < 0") == 0
    assert scalar(db, "select count(*) from inventory where stock_level <= reorder_point") > 0
