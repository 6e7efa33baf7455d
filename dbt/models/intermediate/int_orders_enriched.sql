-- One row per order: the current order header plus its item and payment totals, each aggregated to the
-- order grain on its own before joining (no items x payments fan-out).
with orders as (
    select * from {{ ref('stg_orders') }}
),

order_items as (
    select * from {{ ref('stg_order_items') }}
),

payments as (
    select * from {{ ref('stg_payments') }}
),

item_totals as (
    select
        order_id,
        count(*) as item_count,
        sum(quantity) as units,
        {{ money_sum('gross_amount') }} as gross_amount,
        {{ money_sum('discount_amount') }} as discount_amount,
        {{ money_sum('line_amount') }} as order_total,
        {{ money_sum('shipping_charge') }} as shipping_amount,
        max(_loaded_at) as items_loaded_at
    from order_items
    group by order_id
),

payment_totals as (
    select
        order_id,
        count(*) as payment_count,
        {{ money_sum('payment_value') }} as payment_total,
        max(_loaded_at) as payments_loaded_at
    from payments
    group by order_id
),

joined as (
    select
        orders.order_id,
        orders.customer_id,
        orders.order_status,
        orders.is_revenue_order,
        orders.order_purchase_timestamp,
        orders.order_date,
        orders.order_approved_at,
        orders.order_delivered_timestamp,
        orders.order_estimated_delivery_date,
        orders.updated_at,
        coalesce(item_totals.item_count, 0) as item_count,
        coalesce(item_totals.units, 0) as units,
        coalesce(item_totals.gross_amount, 0) as gross_amount,
        coalesce(item_totals.discount_amount, 0) as discount_amount,
        coalesce(item_totals.order_total, 0) as order_total,
        coalesce(item_totals.shipping_amount, 0) as shipping_amount,
        coalesce(payment_totals.payment_count, 0) as payment_count,
        coalesce(payment_totals.payment_total, 0) as payment_total,
        orders._loaded_at,
        -- latest arrival of any row (header, item, payment) that feeds this order: the incremental
        -- watermark of fct_orders
        case
            when coalesce(item_totals.items_loaded_at, orders._loaded_at) >= orders._loaded_at
                and coalesce(item_totals.items_loaded_at, orders._loaded_at)
                    >= coalesce(payment_totals.payments_loaded_at, orders._loaded_at)
                then coalesce(item_totals.items_loaded_at, orders._loaded_at)
            when coalesce(payment_totals.payments_loaded_at, orders._loaded_at) >= orders._loaded_at
                then coalesce(payment_totals.payments_loaded_at, orders._loaded_at)
            else orders._loaded_at
        end as _source_loaded_at
    from orders
    left join item_totals on orders.order_id = item_totals.order_id
    left join payment_totals on orders.order_id = payment_totals.order_id
)

select * from joined
