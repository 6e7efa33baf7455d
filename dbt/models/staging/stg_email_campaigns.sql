with source as (
    select * from {{ source('vyaparbazaar_raw', 'email_campaigns') }}
),

renamed as (
    select
        cast(campaign_id as {{ dbt.type_string() }}) as campaign_id,
        trim(campaign_name) as campaign_name,
        lower(trim(campaign_type)) as campaign_type,
        subject_line,
        {{ parse_timestamp('sent_at') }} as sent_at,
        {{ parse_timestamp('created_at') }} as created_at,
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as _loaded_at,
        cast(_batch_id as {{ dbt.type_string() }}) as _batch_id
    from source
    where campaign_id is not null
),

ranked as (
    select
        *,
        row_number() over (partition by campaign_id order by _loaded_at desc, _batch_id desc) as arrival_rank
    from renamed
),

latest as (
    select
        campaign_id,
        campaign_name,
        campaign_type,
        subject_line,
        sent_at,
        created_at,
        _loaded_at,
        _batch_id
    from ranked
    where arrival_rank = 1
)

select * from latest
