{#- Rows whose value lies outside [min_value, max_value] (bounds optional; exclusive when inclusive=false).
    Nulls pass; pair with not_null where needed. -#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}

with validation as (
    select {{ column_name }} as value_field
    from {{ model }}
    where {{ column_name }} is not null
),

errors as (
    select value_field
    from validation
    where 1 = 0
    {%- if min_value is not none %}
        or value_field {{ '<' if inclusive else '<=' }} {{ min_value }}
    {%- endif %}
    {%- if max_value is not none %}
        or value_field {{ '>' if inclusive else '>=' }} {{ max_value }}
    {%- endif %}
)

select * from errors

{% endtest %}
