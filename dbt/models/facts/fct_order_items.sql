-- One row per order line of a known order, with the order's date/status and the product's category and
-- current unit cost (the catalogue holds no cost history, so cost is today's cost).
with order_items as (
    select * from {{ ref('stg_order_items') }}
),

orders as (
    select * from {{ ref('stg_orders') }}
),

products as (
    select * from {{ ref('dim_products') }}
),

final as (
    select
        order_items.order_item_id,
        order_items.order_id,
        order_items.line_number,
        orders.customer_id,
        orders.order_status,
        orders.is_revenue_order,
        orders.order_purchase_timestamp,
        orders.order_date,
        {{ month_start('orders.order_date') }} as order_month,
        order_items.product_id,
        products.product_category,
        order_items.quantity,
        order_items.unit_price,
        order_items.gross_amount,
        order_items.discount_amount,
        order_items.line_amount,
        order_items.shipping_charge,
        products.cost as unit_cost,
        order_items.quantity * products.cost as line_cost,
        order_items.line_amount - order_items.quantity * products.cost as line_profit,
        order_items._loaded_at
    from order_items
    inner join orders on order_items.order_id = orders.order_id
    left join products on order_items.product_id = products.product_id
)

select * from final
