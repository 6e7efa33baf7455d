{#-
    Incremental on arrival time: a run reads only the raw rows that arrived (_loaded_at) within
    var('incremental_lookback_hours') of the latest arrival already here, and ranks them together with the version
    of each payment_id already here: the winner is the version a full rebuild would pick (the current row is the best
    of every earlier arrival), and it replaces that payment_id. (A full rebuild re-read and re-ranked every version.)
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='payment_id',
        on_schema_change='append_new_columns'
    )
}}

with source as (
    select * from {{ source('vyaparbazaar_raw', 'payments') }}
    {% if is_incremental() %}
    where _loaded_at > {{ incremental_arrival_cutoff('_loaded_at') }}
    {% endif %}
),

renamed as (
    select
        cast(payment_id as {{ dbt.type_string() }}) as payment_id,
        cast(order_id as {{ dbt.type_string() }}) as order_id,
        {{ dbt.safe_cast('payment_sequential', dbt.type_int()) }} as payment_sequential,
        lower(trim(payment_type)) as payment_type,
        {{ dbt.safe_cast('payment_installments', dbt.type_int()) }} as payment_installments,
        {{ dbt.safe_cast('payment_value', dbt.type_float()) }} as payment_value,
        {{ parse_timestamp('paid_at') }} as paid_at,
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as _loaded_at,
        cast(_batch_id as {{ dbt.type_string() }}) as _batch_id
    from source
    where payment_id is not null
    {% if is_incremental() %}
    union all
    select
        payment_id,
        order_id,
        payment_sequential,
        payment_type,
        payment_installments,
        payment_value,
        paid_at,
        _loaded_at,
        _batch_id
    from {{ this }}
    where payment_id in (select cast(payment_id as {{ dbt.type_string() }}) from source)
    {% endif %}
),

ranked as (
    select
        *,
        row_number() over (partition by payment_id order by _loaded_at desc, _batch_id desc) as version_rank
    from renamed
),

latest as (
    select
        payment_id,
        order_id,
        payment_sequential,
        payment_type,
        payment_installments,
        payment_value,
        paid_at,
        _loaded_at,
        _batch_id
    from ranked
    where version_rank = 1
)

select * from latest
{{ stored_in_order_of('payment_id') }}
