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

{#- "<column> between <lowest> and <highest>" of the values `column` takes in `relation` (where `where`), as
    literals read when the model runs: DuckDB then skips every row group whose min/max lies outside, which a
    `column in (select ...)` alone does not (it reads the column of every row). Exact, never a filter of its own:
    any value in the set lies between its lowest and highest. No value: "false" (the set is empty); at parse
    time, which runs no query, and on other warehouses (no zone maps to skip by): "true". The incremental
    tables are stored in the order of their unique key (stored_in_order_of, below), so the keys an hourly run
    touches sit in a few row groups at the end. -#}
{% macro key_range(column, relation, where='true') -%}
    {%- if not execute or target.type != 'duckdb' -%}
    true
    {%- else -%}
        {%- set row = run_query(
            'select cast(min(' ~ column ~ ') as varchar), cast(max(' ~ column ~ ') as varchar), '
            ~ 'typeof(min(' ~ column ~ ')) from ' ~ relation ~ ' where ' ~ where
        ).rows[0] -%}
        {%- if row[0] is none -%}
    false
        {%- else -%}
    {{ column }} between cast('{{ row[0] | replace("'", "''") }}' as {{ row[2] }}) and cast('{{ row[1] | replace("'", "''") }}' as {{ row[2] }})
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- The final `order by` of an incremental model on DuckDB: the table is written in the order of its unique key
    (a full rebuild sorts; an hourly run appends its few, sorted, newest keys at the end), so the min/max of each
    row group spans a narrow range of keys and key_range's deletes and lookups skip all but a few. Nothing on
    other warehouses (PostgreSQL keeps no such order). -#}
{% macro stored_in_order_of(columns) -%}
    {%- if target.type == 'duckdb' -%}
    order by {{ columns }}
    {%- endif -%}
{%- endmacro %}
