{#- A sum of money amounts, to the paisa. The amounts are doubles with two decimals, which binary floating point
    holds inexactly: a parallel sum adds them in a different order from one run to the next and the last bits
    differ, so an incremental build and a full refresh disagree. Rounded through numeric (exact, portable), the
    sum is the same value every time. -#}
{% macro money_sum(expression) -%}
    cast(round(cast(sum({{ expression }}) as {{ dbt.type_numeric() }}), 2) as {{ dbt.type_float() }})
{%- endmacro %}
