{#- delete+insert on DuckDB (dbt-duckdb's own SQL), with the unique key's range in the temporary relation
    added to the delete (macros/incremental.sql key_range): the delete then reads only the row groups that can
    hold those keys instead of every row of the table. Exactly the same rows are deleted. dbt finds a
    root project's macro before dbt-duckdb's of the same name (as for duckdb__safe_cast). -#}
{% macro duckdb__get_delete_insert_merge_sql(target, source, unique_key, dest_columns, incremental_predicates) -%}
    {%- set predicates = (incremental_predicates or []) | list -%}
    {%- if unique_key is string -%}
        {%- do predicates.append(key_range(unique_key, source)) -%}
    {%- endif -%}
    {{ dbt.duckdb__get_delete_insert_merge_sql(target, source, unique_key, dest_columns, predicates) }}
{%- endmacro %}
