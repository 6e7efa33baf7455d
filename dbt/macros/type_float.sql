{#- dbt's type_float() is `float`: double precision on PostgreSQL, but a 4-byte REAL on DuckDB, where a line
    amount of a few lakh rupees keeps only ~0.01 precision and order totals drift past the tests' tolerance
    at 1M+ rows. Double on DuckDB too, so both warehouses compute amounts alike. -#}
{% macro duckdb__type_float() -%}
    double
{%- endmacro %}
