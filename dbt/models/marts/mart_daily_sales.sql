-- One row per calendar day from the first order to the reference date (zero rows for days without sales).
-- Sales = orders whose status is not in var('non_revenue_order_statuses'), dated by purchase time (UTC).
with orders as (
    select * from {{ ref('fct_orders') }}
),

order_items as (
    select * from {{ ref('fct_order_items') }}
    where is_revenue_order
),

calendar as (
    select * from {{ ref('dim_date') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

date_bounds as (
    select
        min(orders.order_date) as first_date,
        max(orders.order_date) as last_order_date,
        max(as_of.as_of_date) as as_of_date
    from orders
    cross join as_of
),

days as (
    select calendar.date_day, calendar.day_of_week, calendar.is_weekend, calendar.is_festival_season
    from calendar
    cross join date_bounds
    where calendar.date_day >= date_bounds.first_date
        and (calendar.date_day <= date_bounds.last_order_date or calendar.date_day <= date_bounds.as_of_date)
),

order_metrics as (
    select
        order_date,
        sum(case when is_revenue_order then 1 else 0 end) as order_count,
        sum(case when is_revenue_order then 0 else 1 end) as cancelled_or_returned_order_count,
        count(distinct case when is_revenue_order then customer_id end) as customer_count,
        sum(case when is_revenue_order then units else 0 end) as units_sold,
        sum(case when is_revenue_order then gross_amount else 0 end) as gross_merchandise_value,
        sum(case when is_revenue_order then discount_amount else 0 end) as discount_amount,
        sum(case when is_revenue_order then order_total else 0 end) as revenue,
        sum(case when is_revenue_order then shipping_amount else 0 end) as shipping_revenue
    from orders
    group by order_date
),

cost_metrics as (
    select order_date, sum(line_cost) as cost_of_goods_sold
    from order_items
    group by order_date
),

daily as (
    select
        days.date_day,
        days.day_of_week,
        days.is_weekend,
        days.is_festival_season,
        coalesce(order_metrics.order_count, 0) as order_count,
        coalesce(order_metrics.cancelled_or_returned_order_count, 0) as cancelled_or_returned_order_count,
        coalesce(order_metrics.customer_count, 0) as customer_count,
        coalesce(order_metrics.units_sold, 0) as units_sold,
        coalesce(order_metrics.gross_merchandise_value, 0) as gross_merchandise_value,
        coalesce(order_metrics.discount_amount, 0) as discount_amount,
        coalesce(order_metrics.revenue, 0) as revenue,
        coalesce(order_metrics.shipping_revenue, 0) as shipping_revenue,
        coalesce(cost_metrics.cost_of_goods_sold, 0) as cost_of_goods_sold
    from days
    left join order_metrics on days.date_day = order_metrics.order_date
    left join cost_metrics on days.date_day = cost_metrics.order_date
),

final as (
    select
        cast(date_day as date) as order_date,
        cast(day_of_week as {{ dbt.type_int() }}) as day_of_week,
        cast(is_weekend as {{ dbt.type_boolean() }}) as is_weekend,
        cast(is_festival_season as {{ dbt.type_boolean() }}) as is_festival_season,
        cast(order_count as {{ dbt.type_int() }}) as order_count,
        cast(cancelled_or_returned_order_count as {{ dbt.type_int() }}) as cancelled_or_returned_order_count,
        cast(customer_count as {{ dbt.type_int() }}) as customer_count,
        cast(units_sold as {{ dbt.type_int() }}) as units_sold,
        cast(gross_merchandise_value as numeric(18, 2)) as gross_merchandise_value,
        cast(discount_amount as numeric(18, 2)) as discount_amount,
        cast(revenue as numeric(18, 2)) as revenue,
        cast(shipping_revenue as numeric(18, 2)) as shipping_revenue,
        cast(cost_of_goods_sold as numeric(18, 2)) as cost_of_goods_sold,
        cast(revenue - cost_of_goods_sold as numeric(18, 2)) as gross_profit,
        cast({{ safe_divide('revenue', 'order_count') }} as numeric(18, 2)) as avg_order_value
    from daily
)

select * from final
