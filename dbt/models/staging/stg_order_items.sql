{#-
    Incremental on arrival time: a run reads only the raw rows that arrived (_loaded_at) within
    var('incremental_lookback_hours') of the latest arrival already here, and ranks them together with the version
    of each order_item_id already here: the winner is the version a full rebuild would pick (the current row is the best
    of every earlier arrival), and it replaces that order_item_id. (A full rebuild re-read and re-ranked every version.)
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='order_item_id',
        on_schema_change='append_new_columns'
    )
}}

with source as (
    select * from {{ source('vyaparbazaar_raw', 'order_items') }}
    {% if is_incremental() %}
    where _loaded_at > {{ incremental_arrival_cutoff('_loaded_at') }}
    {% endif %}
),

renamed as (
    select
        cast(order_item_id as {{ dbt.type_string() }}) as order_item_id,
        cast(order_id as {{ dbt.type_string() }}) as order_id,
        {{ dbt.safe_cast('line_number', dbt.type_int()) }} as line_number,
        cast(product_id as {{ dbt.type_string() }}) as product_id,
        {{ dbt.safe_cast('quantity', dbt.type_int()) }} as quantity,
        {{ dbt.safe_cast('unit_price', dbt.type_float()) }} as unit_price,
        coalesce({{ dbt.safe_cast('discount_amount', dbt.type_float()) }}, 0) as discount_amount,
        coalesce({{ dbt.safe_cast('shipping_charge', dbt.type_float()) }}, 0) as shipping_charge,
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as _loaded_at,
        cast(_batch_id as {{ dbt.type_string() }}) as _batch_id
    from source
    where order_item_id is not null
    {% if is_incremental() %}
    union all
    select
        order_item_id,
        order_id,
        line_number,
        product_id,
        quantity,
        unit_price,
        discount_amount,
        shipping_charge,
        _loaded_at,
        _batch_id
    from {{ this }}
    where order_item_id in (select cast(order_item_id as {{ dbt.type_string() }}) from source)
    {% endif %}
),

ranked as (
    select
        *,
        row_number() over (
            partition by order_item_id
            order by _loaded_at desc, _batch_id desc
        ) as version_rank
    from renamed
),

latest as (
    select
        order_item_id,
        order_id,
        line_number,
        product_id,
        quantity,
        unit_price,
        discount_amount,
        shipping_charge,
        quantity * unit_price as gross_amount,
        quantity * unit_price - discount_amount as line_amount,
        _loaded_at,
        _batch_id
    from ranked
    where version_rank = 1
)

select * from latest
{{ stored_in_order_of('order_item_id') }}
