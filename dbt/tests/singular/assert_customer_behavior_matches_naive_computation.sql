-- int_customer_behavior (pre-aggregated, then joined) must equal a naive but correct computation: one
-- correlated subquery per customer and metric, straight from staging, so no join can fan out.
-- Returns every customer for whom any metric differs.
{{ config(severity='error') }}

{#- DuckDB decorrelates the subqueries below. Postgres runs each of them once per customer, over the whole table
    (hours at scale 1): there the check covers a deterministic sample of customers (by hash), and the naive side
    reads only their rows. -#}
{%- set sample_size = none if target.type == 'duckdb' else 500 %}

with customers as (
    select * from {{ ref('stg_customers') }}
    {%- if sample_size %}
    order by {{ dbt.hash('customer_id') }}, customer_id
    limit {{ sample_size }}
    {%- endif %}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

line_totals as (
    select order_id, sum(quantity * unit_price - discount_amount) as order_total
    from {{ ref('stg_order_items') }}
    group by order_id
),

sales_orders as (
    select
        orders.order_id,
        orders.customer_id,
        orders.order_purchase_timestamp,
        cast(orders.order_purchase_timestamp as date) as order_date,
        coalesce(line_totals.order_total, 0) as order_total
    from {{ ref('stg_orders') }} as orders
    left join line_totals on orders.order_id = line_totals.order_id
    where orders.order_status not in {{ non_revenue_statuses() }}
    {%- if sample_size %}
        and orders.customer_id in (select customer_id from customers)
    {%- endif %}
),

events as (
    select * from {{ ref('stg_clickstream') }}
    {%- if sample_size %}
    where customer_id in (select customer_id from customers)
    {%- endif %}
),

emails as (
    select * from {{ ref('stg_email_events') }}
    {%- if sample_size %}
    where customer_id in (select customer_id from customers)
    {%- endif %}
),

naive as (
    select
        c.customer_id,
        (select count(*) from sales_orders as o where o.customer_id = c.customer_id) as order_count,
        (select coalesce(sum(o.order_total), 0) from sales_orders as o where o.customer_id = c.customer_id)
            as total_spend,
        (select min(o.order_date) from sales_orders as o where o.customer_id = c.customer_id) as first_order_date,
        (select max(o.order_date) from sales_orders as o where o.customer_id = c.customer_id) as last_order_date,
        (
            select o.order_date from sales_orders as o
            where o.customer_id = c.customer_id
            order by o.order_purchase_timestamp desc, o.order_id desc
            limit 1 offset 1
        ) as previous_order_date,
        (select count(distinct e.session_id) from events as e where e.customer_id = c.customer_id) as website_visits,
        (select count(*) from events as e where e.customer_id = c.customer_id) as total_events,
        (select count(*) from events as e where e.customer_id = c.customer_id and e.event_type = 'product_view')
            as product_views,
        (select count(*) from events as e where e.customer_id = c.customer_id and e.event_type = 'cart_add')
            as cart_additions,
        (select count(*) from events as e where e.customer_id = c.customer_id and e.event_type = 'purchase')
            as purchase_events,
        (
            select count(distinct e.session_id) from events as e
            where e.customer_id = c.customer_id
                and e.event_type = 'cart_add'
                and not exists (
                    select 1 from events as p
                    where p.customer_id = c.customer_id
                        and p.session_id = e.session_id
                        and p.event_type = 'purchase'
                )
        ) as abandoned_cart_count,
        (
            select count(distinct m.campaign_id) from emails as m
            where m.customer_id = c.customer_id and m.event_type in ('delivered', 'open', 'click')
        ) as emails_delivered,
        (
            select count(distinct m.campaign_id) from emails as m
            where m.customer_id = c.customer_id and m.event_type = 'open'
        ) as emails_opened,
        (
            select count(distinct m.campaign_id) from emails as m
            where m.customer_id = c.customer_id and m.event_type = 'click'
        ) as emails_clicked
    from customers as c
),

expected as (
    select
        naive.*,
        {{ days_since('naive.last_order_date', 'as_of.as_of_date') }} as days_since_last_order
    from naive
    cross join as_of
),

actual as (
    select * from {{ ref('int_customer_behavior') }}
    {%- if sample_size %}
    where customer_id in (select customer_id from customers)
    {%- endif %}
),

compared as (
    select
        coalesce(expected.customer_id, actual.customer_id) as customer_id,
        expected.customer_id is null as missing_in_naive,
        actual.customer_id is null as missing_in_model,
        expected.order_count as expected_order_count,
        actual.order_count as actual_order_count,
        expected.total_spend as expected_total_spend,
        actual.total_spend as actual_total_spend,
        case
            when expected.customer_id is null or actual.customer_id is null then true
            when expected.order_count <> actual.order_count then true
            when abs(expected.total_spend - actual.total_spend) > 0.01 then true
            when expected.order_count > 0
                and abs(expected.total_spend / expected.order_count - actual.avg_order_value) > 0.01 then true
            when coalesce(expected.first_order_date, date '1900-01-01')
                <> coalesce(actual.first_order_date, date '1900-01-01') then true
            when coalesce(expected.last_order_date, date '1900-01-01')
                <> coalesce(actual.last_order_date, date '1900-01-01') then true
            when coalesce(expected.previous_order_date, date '1900-01-01')
                <> coalesce(actual.previous_order_date, date '1900-01-01') then true
            when coalesce(expected.days_since_last_order, -1) <> coalesce(actual.days_since_last_order, -1) then true
            when expected.website_visits <> actual.website_visits then true
            when expected.total_events <> actual.total_events then true
            when expected.product_views <> actual.product_views then true
            when expected.cart_additions <> actual.cart_additions then true
            when expected.purchase_events <> actual.purchase_events then true
            when expected.abandoned_cart_count <> actual.abandoned_cart_count then true
            when expected.emails_delivered <> actual.emails_delivered then true
            when expected.emails_opened <> actual.emails_opened then true
            when expected.emails_clicked <> actual.emails_clicked then true
            else false
        end as is_mismatch
    from expected
    full outer join actual on expected.customer_id = actual.customer_id
)

select * from compared where is_mismatch
