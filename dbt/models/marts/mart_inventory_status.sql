-- Current stock per product: the latest snapshot of each product. Days of inventory = stock_level /
-- daily_sales_rate (null when nothing sells). Status: out_of_stock (<= 0 units), low_stock (at or below the
-- reorder point), overstock (more than var('overstock_min_days_of_inventory') days of cover), else in_stock.
with inventory as (
    select * from {{ ref('stg_inventory') }}
),

products as (
    select * from {{ ref('dim_products') }}
),

ranked as (
    select
        *,
        row_number() over (partition by product_id order by snapshot_date desc) as recency_rank
    from inventory
),

current_stock as (
    select * from ranked where recency_rank = 1
),

classified as (
    select
        current_stock.product_id,
        products.product_name,
        products.product_category,
        current_stock.warehouse_id,
        current_stock.snapshot_date,
        current_stock.stock_level,
        current_stock.reorder_point,
        current_stock.daily_sales_rate,
        {{ safe_divide('current_stock.stock_level', 'current_stock.daily_sales_rate') }} as days_of_inventory,
        current_stock.stock_level * products.cost as stock_value_at_cost
    from current_stock
    left join products on current_stock.product_id = products.product_id
),

final as (
    select
        cast(product_id as {{ dbt.type_string() }}) as product_id,
        cast(product_name as {{ dbt.type_string() }}) as product_name,
        cast(product_category as {{ dbt.type_string() }}) as product_category,
        cast(warehouse_id as {{ dbt.type_string() }}) as warehouse_id,
        cast(snapshot_date as date) as snapshot_date,
        cast(stock_level as {{ dbt.type_int() }}) as stock_level,
        cast(reorder_point as {{ dbt.type_int() }}) as reorder_point,
        cast(daily_sales_rate as numeric(18, 2)) as daily_sales_rate,
        cast(days_of_inventory as numeric(18, 1)) as days_of_inventory,
        cast(stock_value_at_cost as numeric(18, 2)) as stock_value_at_cost,
        cast(
            case
                when stock_level <= 0 then 'out_of_stock'
                when stock_level <= reorder_point then 'low_stock'
                when days_of_inventory > {{ var('overstock_min_days_of_inventory') }} then 'overstock'
                else 'in_stock'
            end as {{ dbt.type_string() }}
        ) as stock_status,
        cast(stock_level <= reorder_point as {{ dbt.type_boolean() }}) as needs_reorder
    from classified
)

select * from final
