with source as (
    select * from {{ source('vyaparbazaar_raw', 'payments') }}
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
