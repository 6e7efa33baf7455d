with source as (
    select * from {{ source('vyaparbazaar_raw', 'email_events') }}
),

renamed as (
    select
        cast(email_event_id as {{ dbt.type_string() }}) as email_event_id,
        cast(campaign_id as {{ dbt.type_string() }}) as campaign_id,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        lower(trim(event_type)) as event_type,
        {{ parse_timestamp('event_timestamp') }} as event_timestamp,
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as _loaded_at,
        cast(_batch_id as {{ dbt.type_string() }}) as _batch_id
    from source
    where email_event_id is not null
),

ranked as (
    select
        *,
        row_number() over (partition by email_event_id order by _loaded_at desc, _batch_id desc) as arrival_rank
    from renamed
),

latest as (
    select
        email_event_id,
        campaign_id,
        customer_id,
        event_type,
        event_timestamp,
        _loaded_at,
        _batch_id
    from ranked
    where arrival_rank = 1
)

select * from latest
