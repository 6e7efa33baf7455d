-- One row per order: the current order header plus its item and payment totals, each aggregated to the
-- order grain on its own before joining (no items x payments fan-out).
{#-
    Incremental by order: a run recomputes every order any of whose inputs (header, items, payments) arrived within
    var('incremental_lookback_hours') of the latest arrival already here, from all of that order's rows, and replaces
    it. (A full rebuild re-aggregated every order's items and payments each hour.)
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='order_id',
        on_schema_change='append_new_columns'
    )
}}

{% set stg_relations = [ref('stg_orders'), ref('stg_order_items'), ref('stg_payments')] %}

with
{% if is_incremental() %}
{%- set arrived = "_loaded_at > " ~ incremental_arrival_cutoff('_source_loaded_at') %}
{%- set touched_sql %}
{% for relation in stg_relations %}
    select order_id from {{ relation }} where {{ arrived }}
{% if not loop.last %}union{% endif %}
{% endfor %}
{%- endset %}
{%- set touched_range = key_range('order_id', '(' ~ touched_sql ~ ') as touched') %}
touched_orders as (
    {{ touched_sql }}
),
{% endif %}

{% for name, relation in [('orders', stg_relations[0]), ('order_items', stg_relations[1]), ('payments', stg_relations[2])] %}
{{ name }} as (
    select * from {{ relation }}
    {% if is_incremental() %}
    where {{ touched_range }} and order_id in (select order_id from touched_orders)
    {% endif %}
),
{% endfor %}

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
{{ stored_in_order_of('order_id') }}
