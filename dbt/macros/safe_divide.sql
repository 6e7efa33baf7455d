{#- Floating-point division that returns null (not an error, not an integer quotient) for a zero/null
    denominator. -#}
{% macro safe_divide(numerator, denominator) -%}
    (cast({{ numerator }} as {{ dbt.type_float() }}) / nullif(cast({{ denominator }} as {{ dbt.type_float() }}), 0))
{%- endmacro %}

{#- Relative change from previous to current; null when there is no previous value or it is zero. -#}
{% macro growth_rate(current_value, previous_value) -%}
    {{ safe_divide('(' ~ current_value ~ ') - (' ~ previous_value ~ ')', previous_value) }}
{%- endmacro %}
