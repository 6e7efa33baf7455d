{#- Fails (one row) when the model has fewer than min_rows rows. -#}
{% test not_empty(model, min_rows=1) %}

with row_count as (
    select count(*) as rows_found from {{ model }}
)

select rows_found
from row_count
where rows_found < {{ min_rows }}

{% endtest %}
