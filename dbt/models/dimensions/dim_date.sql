-- One row per calendar day, from 1 January of the earliest year in the data to 31 December of the year
-- after the latest. Built from a cross join of digits (0-99,999 day offsets), which runs on any warehouse.
with order_dates as (
    select min(order_date) as min_date, max(order_date) as max_date from {{ ref('stg_orders') }}
),

signup_dates as (
    select min(customer_signup_date) as min_date, max(customer_signup_date) as max_date
    from {{ ref('stg_customers') }}
),

event_dates as (
    select min(event_date) as min_date, max(event_date) as max_date from {{ ref('stg_clickstream') }}
),

all_bounds as (
    select min_date, max_date from order_dates
    union all
    select min_date, max_date from signup_dates
    union all
    select min_date, max_date from event_dates
),

bounds as (
    select
        cast({{ dbt.date_trunc('year', 'min(min_date)') }} as date) as start_date,
        cast({{ dbt.dateadd('year', 2, dbt.date_trunc('year', 'max(max_date)')) }} as date) as end_date
    from all_bounds
),

digits as (
    -- one line per five digits, so the table reads at a glance
    select 0 as digit union all select 1 union all select 2 union all select 3 union all select 4  -- noqa: LT11
    union all select 5 union all select 6 union all select 7 union all select 8 union all select 9  -- noqa: LT11
),

day_offsets as (
    select
        d1.digit + 10 * d2.digit + 100 * d3.digit + 1000 * d4.digit + 10000 * d5.digit as day_offset
    from digits as d1
    cross join digits as d2
    cross join digits as d3
    cross join digits as d4
    cross join digits as d5
),

spine as (
    select cast({{ dbt.dateadd('day', 'day_offsets.day_offset', 'bounds.start_date') }} as date) as date_day
    from day_offsets
    cross join bounds
    where day_offsets.day_offset < {{ dbt.datediff('bounds.start_date', 'bounds.end_date', 'day') }}
),

final as (
    select
        date_day,
        {{ get_date_parts('date_day') }}
    from spine
)

select * from final
