-- The single reference point for every recency figure. Deterministic: the latest order purchase time in
-- the data, unless var('as_of') pins it.
with orders as (
    select order_purchase_timestamp from {{ ref('stg_orders') }}
),

reference as (
    {% if var('as_of') %}
    select cast('{{ var("as_of") }}' as {{ dbt.type_timestamp() }}) as as_of_timestamp
    {% else %}
    select max(order_purchase_timestamp) as as_of_timestamp
    from orders
    {% endif %}
),

final as (
    select
        as_of_timestamp,
        cast(as_of_timestamp as date) as as_of_date
    from reference
)

select * from final
