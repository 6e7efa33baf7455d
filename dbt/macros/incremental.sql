{#- Lower bound on raw arrival time (_loaded_at) for an incremental run: the latest arrival already in the
    target minus var('incremental_lookback_hours'). Filtering on arrival time, not on the event's own
    timestamp, is what lets late events (old event_timestamp, new _loaded_at) in.
    The latest arrival is read when the model runs and goes into the SQL as a literal: the warehouse can then
    skip whole Parquet row groups and table segments by their min/max (a scalar subquery in the filter read
    every row of the history). An empty target has no latest arrival: everything is read again. -#}
{% macro incremental_arrival_cutoff(watermark_column='_loaded_at') -%}
    {%- set latest = none -%}
    {%- if execute -%}
        {%- set latest = run_query('select max(' ~ watermark_column ~ ') from ' ~ this).columns[0].values()[0] -%}
    {%- endif -%}
    {%- if latest is none -%}{#- also at parse time, which runs no query -#}
    cast('1900-01-01 00:00:00' as {{ dbt.type_timestamp() }})
    {%- else -%}
    ({{ dbt.dateadd('hour', -1 * var('incremental_lookback_hours'), "cast('" ~ latest ~ "' as " ~ dbt.type_timestamp() ~ ")") }})
    {%- endif -%}
{%- endmacro %}

{#- SQL list literal of the order statuses that are not sales. -#}
{% macro non_revenue_statuses() -%}
    ({% for status in var('non_revenue_order_statuses') %}'{{ status }}'{% if not loop.last %}, {% endif %}{% endfor %})
{%- endmacro %}
