{#- Rows for which a boolean SQL expression is not true. Applied to a column, the expression is appended
    to the column name (e.g. expression: ">= 0"). -#}
{% test expression_is_true(model, expression, column_name=none) %}

select *
from {{ model }}
{%- if column_name is none %}
where not ({{ expression }})
{%- else %}
where not ({{ column_name }} {{ expression }})
{%- endif %}

{% endtest %}
