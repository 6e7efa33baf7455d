{#-
    Daily traffic per (event_date, device, traffic_source). Incremental at the day grain: every date touched
    by an event that arrived within the lookback window is deleted and recomputed from all of
    stg_clickstream, so a late event lands in the day it happened, not the day it arrived.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='event_date',
        on_schema_change='append_new_columns'
    )
}}

with events as (
    select * from {{ ref('int_clickstream_events') }}
    where event_date is not null
),

{% if is_incremental() %}
{%- set arrived = "event_date is not null and _loaded_at > " ~ incremental_arrival_cutoff('_max_loaded_at') %}
{#- `events` is read once: a CTE read twice is materialized whole by DuckDB (all 10M events, every hour). #}
events_to_process as (
    select events.*
    from events
    where {{ key_range('event_date', ref('int_clickstream_events'), arrived) }}
        and event_date in (select event_date from {{ ref('int_clickstream_events') }} where {{ arrived }})
),
{% else %}
events_to_process as (
    select * from events
),
{% endif %}

daily as (
    select
        event_date,
        device,
        traffic_source,
        count(*) as event_count,
        count(distinct session_id) as session_count,
        count(distinct customer_id) as identified_customer_count,
        count(distinct case when is_anonymous then session_id end) as anonymous_session_count,
        sum(case when is_page_view_event then 1 else 0 end) as page_views,
        sum(case when is_product_view_event then 1 else 0 end) as product_views,
        sum(case when is_cart_add_event then 1 else 0 end) as cart_adds,
        sum(case when is_cart_remove_event then 1 else 0 end) as cart_removes,
        sum(case when is_checkout_event then 1 else 0 end) as checkouts,
        sum(case when is_purchase_event then 1 else 0 end) as purchases,
        count(distinct case when is_purchase_event then session_id end) as purchasing_session_count,
        max(_loaded_at) as _max_loaded_at
    from events_to_process
    group by event_date, device, traffic_source
),

final as (
    select
        event_date,
        device,
        traffic_source,
        event_count,
        session_count,
        identified_customer_count,
        anonymous_session_count,
        page_views,
        product_views,
        cart_adds,
        cart_removes,
        checkouts,
        purchases,
        purchasing_session_count,
        {{ safe_divide('purchasing_session_count', 'session_count') }} as session_conversion_rate,
        _max_loaded_at,
        cast({{ dbt.current_timestamp() }} as {{ dbt.type_timestamp() }}) as _dbt_processed_at
    from daily
)

select * from final
{{ stored_in_order_of('event_date, device, traffic_source') }}
