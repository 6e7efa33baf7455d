-- Informational (warn): clickstream events that arrived more than var('incremental_lookback_hours') after
-- they happened, outside the initial backfill batch. They are handled (incremental filters on arrival time)
-- but their volume is worth watching: a spike means a collector is buffering.
{{ config(severity='warn') }}

with events as (
    select * from {{ ref('stg_clickstream') }}
),

first_batch as (
    select min(_batch_id) as backfill_batch_id from events
),

late as (
    select events.event_id, events.event_timestamp, events._loaded_at, events._batch_id
    from events
    cross join first_batch
    where events._batch_id <> first_batch.backfill_batch_id
        and events.event_timestamp
            < {{ dbt.dateadd('hour', -1 * var('incremental_lookback_hours'), 'events._loaded_at') }}
)

select * from late
