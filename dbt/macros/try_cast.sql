{#- dbt's default safe_cast is a plain cast that aborts the whole run on one malformed raw value. Every
    dbt.safe_cast in the project (staging's typed parsing) yields null instead, on every warehouse; the
    not_null / range tests then flag the row.
    DuckDB: its own try_cast. Postgres: one small function per target type, `<target schema>.vyapar_try_cast_<type>
    (text)`, created by the on-run-start hook create_safe_cast_functions() (below); ~1 us per value. Types
    without such a function (text, numeric(p, s), as in unit-test fixtures) keep dbt's plain cast. -#}
{% macro duckdb__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}

{#- The Postgres target types safe_cast supports, by every spelling dbt's type macros produce. -#}
{% macro _safe_cast_types() -%}
    {{ return({
        'timestamp': 'timestamp', 'timestamp without time zone': 'timestamp',
        'date': 'date',
        'int': 'integer', 'integer': 'integer', 'int4': 'integer',
        'bigint': 'bigint', 'int8': 'bigint',
        'float': 'double_precision', 'float8': 'double_precision', 'double precision': 'double_precision',
        'numeric': 'numeric', 'boolean': 'boolean', 'bool': 'boolean',
    }) }}
{%- endmacro %}

{% macro postgres__safe_cast(field, type) -%}
    {%- set suffix = _safe_cast_types().get(type | string | lower | trim) -%}
    {%- if suffix is none -%}
        {#- other types (text, numeric(p, s): unit-test fixtures) are dbt's plain cast -#}
        {{ return(dbt.default__safe_cast(field, type)) }}
    {%- endif -%}
    {{ adapter.quote(target.schema) }}.vyapar_try_cast_{{ suffix }}(cast({{ field }} as text))
{%- endmacro %}

{#- on-run-start hook. Postgres: creates the functions above once per database (the version suffix _v1 names a
    function set; change it when a body changes). An advisory lock keeps concurrent dbt runs (many workers) from
    racing on the catalogue. Other warehouses: nothing. -#}
{% macro create_safe_cast_functions() -%}
    {{ return(adapter.dispatch('create_safe_cast_functions', 'vyaparbazaar')()) }}
{%- endmacro %}

{% macro default__create_safe_cast_functions() -%}
    select 1
{%- endmacro %}

{% macro postgres__create_safe_cast_functions() -%}
    {%- set schema = adapter.quote(target.schema) -%}
    {%- set types = {'timestamp': 'timestamp', 'date': 'date', 'integer': 'integer', 'bigint': 'bigint',
                     'double_precision': 'double precision', 'numeric': 'numeric', 'boolean': 'boolean'} -%}
do $hook$
begin
    perform pg_advisory_xact_lock(7283190418);
    if exists (
        select 1 from pg_catalog.pg_proc as p
        join pg_catalog.pg_namespace as n on n.oid = p.pronamespace
        where n.nspname = '{{ target.schema }}' and p.proname = 'vyapar_try_cast_v1_marker'
    ) then
        return;
    end if;
    {%- for suffix, pg_type in types.items() %}
    create or replace function {{ schema }}.vyapar_try_cast_{{ suffix }}(value text) returns {{ pg_type }}
        language plpgsql immutable parallel safe as $fn$
        begin
            return value::{{ pg_type }};
        exception when others then
            return null;
        end
        $fn$;
    {%- endfor %}
    create or replace function {{ schema }}.vyapar_try_cast_v1_marker() returns integer
        language sql immutable as $fn$ select 1 $fn$;
end
$hook$
{%- endmacro %}
