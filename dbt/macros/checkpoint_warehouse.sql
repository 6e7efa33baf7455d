{#- on-run-end hook: DuckDB folds its WAL into the database file; other warehouses need nothing. -#}
{% macro checkpoint_warehouse() -%}
    {{ return(adapter.dispatch('checkpoint_warehouse', 'vyaparbazaar')()) }}
{%- endmacro %}

{% macro default__checkpoint_warehouse() -%}
    select 1
{%- endmacro %}

{% macro duckdb__checkpoint_warehouse() -%}
    {%- if execute and flags.WHICH in ('run', 'build', 'seed', 'snapshot') -%}
        checkpoint
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
