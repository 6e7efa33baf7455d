-- Monthly P&L view of sales orders. Every month from the first order to the reference month has a row
-- (zero when nothing sold), so month-over-month growth always compares with the calendar month before.
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

sales_orders as (
    select
        *,
        {{ month_start('order_date') }} as order_month,
        row_number() over (
            partition by customer_id order by order_purchase_timestamp, order_id
        ) as customer_order_number
    from orders
    where is_revenue_order
),

month_bounds as (
    select
        min({{ month_start('orders.order_date') }}) as first_month,
        max({{ month_start('orders.order_date') }}) as last_order_month,
        max({{ month_start('as_of.as_of_date') }}) as as_of_month
    from orders
    cross join as_of
),

months as (
    select distinct calendar.month_start_date
    from calendar
    cross join month_bounds
    where calendar.month_start_date >= month_bounds.first_month
        and (
            calendar.month_start_date <= month_bounds.last_order_month
            or calendar.month_start_date <= month_bounds.as_of_month
        )
),

order_metrics as (
    select
        order_month,
        count(*) as order_count,
        count(distinct customer_id) as customer_count,
        sum(case when customer_order_number = 1 then 1 else 0 end) as new_customer_count,
        sum(gross_amount) as gross_merchandise_value,
        sum(discount_amount) as discount_amount,
        sum(order_total) as revenue,
        sum(shipping_amount) as shipping_revenue
    from sales_orders
    group by order_month
),

cost_metrics as (
    select
        order_month,
        sum(line_cost) as cost_of_goods_sold
    from order_items
    group by order_month
),

non_sales as (
    select
        {{ month_start('order_date') }} as order_month,
        count(*) as cancelled_or_returned_order_count
    from orders
    where not is_revenue_order
    group by {{ month_start('order_date') }}
),

monthly as (
    select
        months.month_start_date,
        coalesce(order_metrics.order_count, 0) as order_count,
        coalesce(order_metrics.customer_count, 0) as customer_count,
        coalesce(order_metrics.new_customer_count, 0) as new_customer_count,
        coalesce(non_sales.cancelled_or_returned_order_count, 0) as cancelled_or_returned_order_count,
        coalesce(order_metrics.gross_merchandise_value, 0) as gross_merchandise_value,
        coalesce(order_metrics.discount_amount, 0) as discount_amount,
        coalesce(order_metrics.revenue, 0) as revenue,
        coalesce(order_metrics.shipping_revenue, 0) as shipping_revenue,
        coalesce(cost_metrics.cost_of_goods_sold, 0) as cost_of_goods_sold
    from months
    left join order_metrics on months.month_start_date = order_metrics.order_month
    left join cost_metrics on months.month_start_date = cost_metrics.order_month
    left join non_sales on months.month_start_date = non_sales.order_month
),

with_previous as (
    select
        *,
        revenue - cost_of_goods_sold as gross_profit,
        lag(revenue) over (order by month_start_date) as previous_month_revenue,
        lag(order_count) over (order by month_start_date) as previous_month_order_count
    from monthly
),

final as (
    select
        cast(month_start_date as date) as month_start_date,
        cast(order_count as {{ dbt.type_int() }}) as order_count,
        cast(customer_count as {{ dbt.type_int() }}) as customer_count,
        cast(new_customer_count as {{ dbt.type_int() }}) as new_customer_count,
        cast(cancelled_or_returned_order_count as {{ dbt.type_int() }}) as cancelled_or_returned_order_count,
        cast(gross_merchandise_value as numeric(18, 2)) as gross_merchandise_value,
        cast(discount_amount as numeric(18, 2)) as discount_amount,
        cast(revenue as numeric(18, 2)) as revenue,
        cast(shipping_revenue as numeric(18, 2)) as shipping_revenue,
        cast(cost_of_goods_sold as numeric(18, 2)) as cost_of_goods_sold,
        cast(gross_profit as numeric(18, 2)) as gross_profit,
        cast(100 * {{ safe_divide('gross_profit', 'revenue') }} as numeric(18, 2)) as gross_margin_pct,
        cast({{ safe_divide('revenue', 'order_count') }} as numeric(18, 2)) as avg_order_value,
        cast(previous_month_revenue as numeric(18, 2)) as previous_month_revenue,
        cast(100 * {{ growth_rate('revenue', 'previous_month_revenue') }} as numeric(18, 2))
            as mom_revenue_growth_pct,
        cast(100 * {{ growth_rate('order_count', 'previous_month_order_count') }} as numeric(18, 2))
            as mom_order_growth_pct
    from with_previous
)

select * from final
