{#-
    Incremental: each run replaces every order any of whose inputs (header, items, payments) arrived
    within var('incremental_lookback_hours') of the latest arrival already loaded, so status updates
    re-sent in later batches overwrite the earlier version.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='order_id',
        on_schema_change='append_new_columns'
    )
}}

with orders as (
    select * from {{ ref('int_orders_enriched') }}
    {% if is_incremental() %}
    where _source_loaded_at > {{ incremental_arrival_cutoff('_source_loaded_at') }}
    {% endif %}
),

final as (
    select
        order_id,
        customer_id,
        order_status,
        is_revenue_order,
        order_purchase_timestamp,
        order_date,
        order_approved_at,
        order_delivered_timestamp,
        order_estimated_delivery_date,
        {{ dbt.datediff('order_purchase_timestamp', 'order_delivered_timestamp', 'day') }} as delivery_days,
        case
            when order_delivered_timestamp is null then null
            else cast(order_delivered_timestamp as date) > order_estimated_delivery_date
        end as is_delivered_late,
        item_count,
        units,
        gross_amount,
        discount_amount,
        order_total,
        shipping_amount,
        order_total + shipping_amount as amount_billed,
        payment_count,
        payment_total,
        updated_at,
        _loaded_at,
        _source_loaded_at,
        cast({{ dbt.current_timestamp() }} as {{ dbt.type_timestamp() }}) as _dbt_processed_at
    from orders
)

select * from final
{{ stored_in_order_of('order_id') }}
