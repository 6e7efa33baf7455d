-- The three sales marts must tell the same story month by month: mart_financial_metrics' revenue and order
-- count equal the sums of mart_daily_sales over the month's days, and its revenue equals the month's
-- product revenue in mart_product_performance. (Kept within the marts layer so a per-layer run never
-- compares freshly built models with another layer's stale ones.) Marts round every row to 2 decimals, so
-- sums may differ by half a paisa per row.
with monthly as (
    select month_start_date, order_count, revenue from {{ ref('mart_financial_metrics') }}
),

daily as (
    select
        {{ month_start('order_date') }} as month_start_date,
        sum(order_count) as order_count,
        sum(revenue) as revenue,
        count(*) as day_rows
    from {{ ref('mart_daily_sales') }}
    group by {{ month_start('order_date') }}
),

by_product as (
    select month_start_date, sum(revenue) as revenue, count(*) as product_rows
    from {{ ref('mart_product_performance') }}
    group by month_start_date
),

compared as (
    select
        monthly.month_start_date,
        monthly.order_count,
        daily.order_count as daily_order_count,
        monthly.revenue,
        daily.revenue as daily_revenue,
        by_product.revenue as product_revenue
    from monthly
    left join daily on monthly.month_start_date = daily.month_start_date
    left join by_product on monthly.month_start_date = by_product.month_start_date
    where monthly.order_count <> coalesce(daily.order_count, 0)
        or abs(monthly.revenue - coalesce(daily.revenue, 0)) > 0.005 * (coalesce(daily.day_rows, 0) + 1)
        or abs(monthly.revenue - coalesce(by_product.revenue, 0)) > 0.005 * (coalesce(by_product.product_rows, 0) + 1)
)

select * from compared
