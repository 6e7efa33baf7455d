{#-
    Incremental on arrival time: each run re-reads every raw row that arrived (_loaded_at) within
    var('incremental_lookback_hours') of the latest arrival already loaded, deduplicates it by event_id
    (latest arrival wins, exactly as a full rebuild would) and replaces those event_ids. Late events carry an
    old event_timestamp but a new _loaded_at, so they are never skipped.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='event_id',
        on_schema_change='append_new_columns'
    )
}}

with source as (
    select * from {{ source('vyaparbazaar_raw', 'clickstream') }}
    where event_id is not null
    {% if is_incremental() %}
        and _loaded_at > {{ incremental_arrival_cutoff('_loaded_at') }}
    {% endif %}
),

renamed as (
    select
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        cast(session_id as {{ dbt.type_string() }}) as session_id,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        {{ parse_timestamp('event_timestamp') }} as event_timestamp,
        lower(trim(event_type)) as event_type,
        lower(trim(page_type)) as page_type,
        cast(product_id as {{ dbt.type_string() }}) as product_id,
        lower(trim(device)) as device,
        lower(trim(browser)) as browser,
        lower(trim(utm_source)) as utm_source,
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as _loaded_at,
        cast(_batch_id as {{ dbt.type_string() }}) as _batch_id
    from source
),

ranked as (
    select
        *,
        row_number() over (partition by event_id order by _loaded_at desc, _batch_id desc) as arrival_rank
    from renamed
),

deduplicated as (
    select
        event_id,
        session_id,
        customer_id,
        event_timestamp,
        cast(event_timestamp as date) as event_date,
        event_type,
        page_type,
        product_id,
        device,
        browser,
        utm_source,
        _loaded_at,
        _batch_id,
        cast({{ dbt.current_timestamp() }} as {{ dbt.type_timestamp() }}) as _dbt_processed_at
    from ranked
    where arrival_rank = 1
)

select * from deduplicated
{{ stored_in_order_of('event_id') }}
