with source as (
    select * from {{ source('vyaparbazaar_raw', 'customers') }}
),

renamed as (
    select
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(customer_unique_id as {{ dbt.type_string() }}) as customer_unique_id,
        trim(first_name) as first_name,
        trim(last_name) as last_name,
        lower(trim(email)) as email,
        trim(cast(phone as {{ dbt.type_string() }})) as phone,
        trim(customer_city) as customer_city,
        trim(customer_state) as customer_state,
        trim(cast(customer_zip_code as {{ dbt.type_string() }})) as customer_zip_code,
        {{ parse_timestamp('signup_at') }} as signup_at,
        {{ parse_timestamp('updated_at') }} as updated_at,
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as _loaded_at,
        cast(_batch_id as {{ dbt.type_string() }}) as _batch_id
    from source
    where customer_id is not null
),

ranked as (
    select
        *,
        row_number() over (
            partition by customer_id
            order by updated_at desc nulls last, _loaded_at desc, _batch_id desc
        ) as version_rank
    from renamed
),

latest as (
    select
        customer_id,
        customer_unique_id,
        first_name,
        last_name,
        email,
        phone,
        customer_city,
        customer_state,
        customer_zip_code,
        signup_at,
        cast(signup_at as date) as customer_signup_date,
        updated_at,
        _loaded_at,
        _batch_id
    from ranked
    where version_rank = 1
)

select * from latest
