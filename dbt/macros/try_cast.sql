{#- dbt-duckdb inherits the default safe_cast, a plain cast that aborts the run on one malformed raw value.
    DuckDB has try_cast, which yields null instead; the not_null / range tests then flag the row. Every
    dbt.safe_cast in the project (staging's typed parsing) dispatches here on DuckDB. -#}
{% macro duckdb__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}
