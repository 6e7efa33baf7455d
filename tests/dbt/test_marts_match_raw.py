"""The marts' key figures equal an independent computation straight from the raw Parquet files.

The SQL here is written from the documented definitions, not copied from the models: sales orders are the
latest version of each order whose status is not cancelled/returned; revenue is the sum of its lines'
quantity * unit_price - discount_amount; recency is measured from the latest order purchase date.
"""

from __future__ import annotations

from collections import Counter

import pytest
from warehouse_harness import rows

RAW_SALES_ORDERS = """
    with latest_orders as (
        select * from raw_orders
        qualify row_number() over (partition by order_id order by updated_at desc nulls last, _loaded_at desc) = 1
    ),
    lines as (
        select * from raw_order_items
        qualify row_number() over (partition by order_item_id order by _loaded_at desc) = 1
    ),
    order_revenue as (
        select order_id, sum(quantity * unit_price - discount_amount) as revenue from lines group by order_id
    )
    select o.order_id, o.customer_id, o.order_purchase_timestamp, coalesce(r.revenue, 0) as revenue
    from latest_orders o left join order_revenue r using (order_id)
    where o.order_status not in ('cancelled', 'returned')
"""


@pytest.fixture(scope="module")
def raw(warehouse):
    con = warehouse.raw()
    con.execute(f"create table sales_orders as {RAW_SALES_ORDERS}")
    yield con
    con.close()


@pytest.fixture(scope="module")
def marts(warehouse):
    con = warehouse.warehouse()
    yield con
    con.close()


def test_monthly_revenue_and_order_counts_match_raw(raw, marts):
    expected = {
        m: (n, rev)
        for m, n, rev in rows(
            raw,
            """
        select cast(date_trunc('month', order_purchase_timestamp) as date), count(*), sum(revenue)
        from sales_orders group by 1""",
        )
    }
    actual = {
        m: (n, float(rev))
        for m, n, rev in rows(
            marts,
            """
        select month_start_date, order_count, revenue from marts.mart_financial_metrics""",
        )
    }
    assert expected, "no sales in the generated data"
    for month, (count, revenue) in actual.items():
        exp_count, exp_revenue = expected.get(month, (0, 0.0))
        assert count == exp_count, month
        assert revenue == pytest.approx(exp_revenue, abs=0.01), month
    assert set(expected) <= set(actual)


def test_daily_sales_match_raw(raw, marts):
    expected = {
        d: (n, rev)
        for d, n, rev in rows(
            raw,
            """
        select cast(order_purchase_timestamp as date), count(*), sum(revenue) from sales_orders group by 1""",
        )
    }
    actual = {
        d: (n, float(rev))
        for d, n, rev in rows(
            marts,
            """
        select order_date, order_count, revenue from marts.mart_daily_sales""",
        )
    }
    assert set(expected) <= set(actual)
    for day, (count, revenue) in actual.items():
        exp_count, exp_revenue = expected.get(day, (0, 0.0))
        assert (count, revenue) == (exp_count, pytest.approx(exp_revenue, abs=0.01)), day
    dates = sorted(actual)
    assert len(dates) == (dates[-1] - dates[0]).days + 1, "one row per calendar day, no gaps"


def _segments(order_count, spend, days_since_last, days_since_first, gap_last_two):
    """The documented rules (dbt_project.yml var 'rfm', macros/customer_segments.sql), restated."""
    if order_count == 0:
        return None, None, None, "Prospects", "Prospect"
    recency = "Recent" if days_since_last <= 30 else "Moderate" if days_since_last <= 90 else "Lapsed"
    frequency = (
        "High" if order_count >= 5 else "Medium" if order_count >= 3 else "Low" if order_count == 2 else "One-time"
    )
    monetary = "High" if spend >= 20000 else "Medium" if spend >= 5000 else "Low"
    if recency == "Recent" and frequency in ("High", "Medium") and monetary == "High":
        rfm = "Champions"
    elif recency in ("Recent", "Moderate") and frequency in ("High", "Medium"):
        rfm = "Loyal Customers"
    elif recency == "Lapsed" and frequency != "One-time":
        rfm = "At Risk"
    elif recency == "Recent" and frequency == "One-time":
        rfm = "New Customers"
    elif recency == "Recent":
        rfm = "Potential Loyalists"
    elif recency == "Moderate":
        rfm = "Needs Attention"
    else:
        rfm = "Hibernating"
    if days_since_last > 180:
        stage = "Churned"
    elif days_since_last > 90:
        stage = "At Risk"
    elif days_since_first <= 30:
        stage = "New"
    elif gap_last_two is not None and gap_last_two > 90:
        stage = "Reactivated"
    else:
        stage = "Active"
    return recency, frequency, monetary, rfm, stage


def test_rfm_and_lifecycle_segment_sizes_match_the_documented_rules(raw, marts):
    (as_of,) = raw.execute("""
        select cast(max(order_purchase_timestamp) as date) from raw_orders""").fetchone()
    customers = [
        c for (c,) in rows(raw, "select distinct customer_id from raw_customers where customer_id is not null")
    ]
    orders_by_customer: dict[str, list] = {c: [] for c in customers}
    for customer_id, purchased_at, revenue in rows(
        raw,
        """
            select customer_id, order_purchase_timestamp, revenue from sales_orders
            order by customer_id, order_purchase_timestamp desc, order_id desc""",
    ):
        orders_by_customer.setdefault(customer_id, []).append((purchased_at.date(), revenue))
    expected = Counter()
    for customer_id in customers:
        orders = orders_by_customer[customer_id]
        if not orders:
            expected[_segments(0, 0, None, None, None)] += 1
            continue
        last, first = orders[0][0], orders[-1][0]
        gap = (last - orders[1][0]).days if len(orders) > 1 else None
        expected[_segments(len(orders), sum(r for _, r in orders), (as_of - last).days, (as_of - first).days, gap)] += 1
    actual = Counter(
        {
            tuple(r[:-1]): r[-1]
            for r in rows(
                marts,
                """
        select recency_segment, frequency_segment, monetary_segment, rfm_segment, lifecycle_stage, count(*)
        from marts.mart_customer_overview group by all""",
            )
        }
    )
    assert actual == expected
    assert len(actual) > 3, "the generated data should exercise several segments"


def test_campaign_unique_open_rates_match_raw(raw, marts):
    expected = {
        c: rate
        for c, rate in rows(
            raw,
            """
        with events as (
            select * from raw_email_events
            qualify row_number() over (partition by email_event_id order by _loaded_at desc) = 1
        )
        select campaign_id,
               round(100.0 * count(distinct case when event_type = 'open' then customer_id end)
                     / nullif(count(distinct case when event_type in ('delivered', 'open', 'click')
                                                  then customer_id end), 0), 2)
        from events where customer_id is not null group by campaign_id""",
        )
    }
    actual = {
        c: (float(r) if r is not None else None)
        for c, r in rows(
            marts,
            """
        select campaign_id, unique_open_rate_pct from marts.mart_campaign_performance""",
        )
    }
    assert expected, "no email events in the generated data"
    for campaign_id, rate in expected.items():
        assert actual[campaign_id] == pytest.approx(float(rate) if rate is not None else None, abs=0.01), campaign_id
    assert set(actual) >= set(expected)
