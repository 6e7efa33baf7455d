-- Informational (warn): a spike of late clickstream events, i.e. events that arrived more than
-- var('incremental_lookback_hours') after they happened. Some lateness is normal and handled (incremental models
-- filter on arrival time): collectors buffer a little, and the data generator makes ~5% of each hour's events
-- 2-10 hours late on purpose. So it warns only when, among the events that arrived within the lookback window of
-- the latest arrival (what the last build took in), more than 20% (and at least 20 events) are late: a collector
-- flushing a backlog. A spike stops warning once it leaves the window (the alert then recovers).
{{ config(severity='warn') }}
{%- set max_late_share = 0.2 %}
{%- set min_late_events = 20 %}

with events as (
    select * from {{ ref('stg_clickstream') }}
),

arrivals as (
    select
        min(_batch_id) as backfill_batch_id,
        max(_loaded_at) as latest_loaded_at
    from events
),

recent as (
    select
        events.event_timestamp,
        events._loaded_at
    from events
    cross join arrivals
    where events._batch_id <> arrivals.backfill_batch_id
        and events._loaded_at > {{ dbt.dateadd('hour', -1 * var('incremental_lookback_hours'), 'arrivals.latest_loaded_at') }}
),

late_share as (
    select
        count(*) as arrived,
        sum(
            case
                when event_timestamp < {{ dbt.dateadd('hour', -1 * var('incremental_lookback_hours'), '_loaded_at') }}
                    then 1
                else 0
            end
        ) as late
    from recent
)

select
    arrived,
    late
from late_share
where late >= {{ min_late_events }}
    and late > {{ max_late_share }} * arrived
