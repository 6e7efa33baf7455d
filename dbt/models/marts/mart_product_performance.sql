-- One row per product per month, from the product's first sale to the reference month: a complete
-- monthly series (months without sales are zero rows), so the month-over-month lag always compares with
-- the previous calendar month. Sales, product views, reviews and stock are each aggregated to the
-- (product, month) grain on their own before joining, so none multiplies another.
with products as (
    select * from {{ ref('dim_products') }}
),

order_items as (
    select * from {{ ref('fct_order_items') }}
    where is_revenue_order
),

product_events as (
    select * from {{ ref('int_clickstream_events') }}
    where product_id is not null
        and event_date is not null
),

reviews as (
    select * from {{ ref('stg_product_reviews') }}
    where review_created_at is not null
),

inventory as (
    select * from {{ ref('stg_inventory') }}
),

calendar as (
    select * from {{ ref('dim_date') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

monthly_sales as (
    select
        product_id,
        order_month,
        count(distinct order_id) as order_count,
        sum(quantity) as units_sold,
        sum(line_amount) as revenue,
        sum(line_cost) as cost_of_goods_sold
    from order_items
    group by product_id, order_month
),

product_first_month as (
    select product_id, min(order_month) as first_sale_month
    from monthly_sales
    group by product_id
),

series_end as (
    select
        case
            when max({{ month_start('as_of.as_of_date') }}) > max(monthly_sales.order_month)
                then max({{ month_start('as_of.as_of_date') }})
            else max(monthly_sales.order_month)
        end as last_month
    from monthly_sales
    cross join as_of
),

months as (
    select distinct month_start_date from calendar
),

product_months as (
    select
        product_first_month.product_id,
        months.month_start_date
    from product_first_month
    cross join series_end
    inner join months
        on months.month_start_date >= product_first_month.first_sale_month
        and months.month_start_date <= series_end.last_month
),

monthly_engagement as (
    select
        product_id,
        {{ month_start('event_date') }} as month_start_date,
        sum(case when is_product_view_event then 1 else 0 end) as product_views,
        sum(case when is_cart_add_event then 1 else 0 end) as cart_adds
    from product_events
    group by product_id, {{ month_start('event_date') }}
),

monthly_reviews as (
    select
        product_id,
        {{ month_start('review_created_at') }} as month_start_date,
        count(*) as review_count,
        avg(cast(review_score as {{ dbt.type_float() }})) as avg_review_score
    from reviews
    group by product_id, {{ month_start('review_created_at') }}
),

monthly_stock as (
    select
        product_id,
        {{ month_start('snapshot_date') }} as month_start_date,
        avg(cast(stock_level as {{ dbt.type_float() }})) as avg_stock_level,
        min(stock_level) as min_stock_level
    from inventory
    group by product_id, {{ month_start('snapshot_date') }}
),

series as (
    select
        product_months.product_id,
        product_months.month_start_date,
        coalesce(monthly_sales.order_count, 0) as order_count,
        coalesce(monthly_sales.units_sold, 0) as units_sold,
        coalesce(monthly_sales.revenue, 0) as revenue,
        coalesce(monthly_sales.cost_of_goods_sold, 0) as cost_of_goods_sold,
        coalesce(monthly_sales.revenue, 0) - coalesce(monthly_sales.cost_of_goods_sold, 0) as profit
    from product_months
    left join monthly_sales
        on product_months.product_id = monthly_sales.product_id
        and product_months.month_start_date = monthly_sales.order_month
),

with_previous as (
    select
        *,
        lag(revenue) over (partition by product_id order by month_start_date) as previous_month_revenue,
        lag(units_sold) over (partition by product_id order by month_start_date) as previous_month_units_sold
    from series
),

joined as (
    select
        with_previous.product_id,
        products.product_name,
        products.product_category,
        products.product_subcategory,
        products.brand,
        with_previous.month_start_date,
        with_previous.order_count,
        with_previous.units_sold,
        with_previous.revenue,
        with_previous.cost_of_goods_sold,
        with_previous.profit,
        100 * {{ safe_divide('with_previous.profit', 'with_previous.revenue') }} as profit_margin_pct,
        with_previous.previous_month_revenue,
        100 * {{ growth_rate('with_previous.revenue', 'with_previous.previous_month_revenue') }}
            as mom_revenue_growth_pct,
        100 * {{ growth_rate('with_previous.units_sold', 'with_previous.previous_month_units_sold') }}
            as mom_units_growth_pct,
        coalesce(monthly_engagement.product_views, 0) as product_views,
        coalesce(monthly_engagement.cart_adds, 0) as cart_adds,
        {{ safe_divide('with_previous.order_count', 'monthly_engagement.product_views') }} as orders_per_product_view,
        coalesce(monthly_reviews.review_count, 0) as review_count,
        monthly_reviews.avg_review_score,
        monthly_stock.avg_stock_level,
        monthly_stock.min_stock_level,
        rank() over (
            partition by with_previous.month_start_date, products.product_category
            order by with_previous.revenue desc
        ) as category_revenue_rank,
        rank() over (
            partition by with_previous.month_start_date order by with_previous.revenue desc
        ) as overall_revenue_rank
    from with_previous
    left join products on with_previous.product_id = products.product_id
    left join monthly_engagement
        on with_previous.product_id = monthly_engagement.product_id
        and with_previous.month_start_date = monthly_engagement.month_start_date
    left join monthly_reviews
        on with_previous.product_id = monthly_reviews.product_id
        and with_previous.month_start_date = monthly_reviews.month_start_date
    left join monthly_stock
        on with_previous.product_id = monthly_stock.product_id
        and with_previous.month_start_date = monthly_stock.month_start_date
),

final as (
    select
        cast(product_id as {{ dbt.type_string() }}) as product_id,
        cast(product_name as {{ dbt.type_string() }}) as product_name,
        cast(product_category as {{ dbt.type_string() }}) as product_category,
        cast(product_subcategory as {{ dbt.type_string() }}) as product_subcategory,
        cast(brand as {{ dbt.type_string() }}) as brand,
        cast(month_start_date as date) as month_start_date,
        cast(order_count as {{ dbt.type_int() }}) as order_count,
        cast(units_sold as {{ dbt.type_int() }}) as units_sold,
        cast(revenue as numeric(18, 2)) as revenue,
        cast(cost_of_goods_sold as numeric(18, 2)) as cost_of_goods_sold,
        cast(profit as numeric(18, 2)) as profit,
        cast(profit_margin_pct as numeric(18, 2)) as profit_margin_pct,
        cast(previous_month_revenue as numeric(18, 2)) as previous_month_revenue,
        cast(mom_revenue_growth_pct as numeric(18, 2)) as mom_revenue_growth_pct,
        cast(mom_units_growth_pct as numeric(18, 2)) as mom_units_growth_pct,
        cast(product_views as {{ dbt.type_int() }}) as product_views,
        cast(cart_adds as {{ dbt.type_int() }}) as cart_adds,
        cast(orders_per_product_view as numeric(18, 4)) as orders_per_product_view,
        cast(review_count as {{ dbt.type_int() }}) as review_count,
        cast(avg_review_score as numeric(18, 2)) as avg_review_score,
        cast(avg_stock_level as numeric(18, 2)) as avg_stock_level,
        cast(min_stock_level as {{ dbt.type_int() }}) as min_stock_level,
        cast(category_revenue_rank as {{ dbt.type_int() }}) as category_revenue_rank,
        cast(overall_revenue_rank as {{ dbt.type_int() }}) as overall_revenue_rank
    from joined
)

select * from final
