{#-
    Ids delivered more than once with different content. An at-least-once feed re-sends a row unchanged (the
    staging model keeps one row per id), so a repeated id is expected; a second *version* of the same id is a
    collision or an upstream edit, and worth a look.
-#}
{% test resends_are_identical(model, column_name, compare_columns) %}

with versions as (
    select distinct
        {{ column_name }},
        {{ compare_columns | join(', ') }}
    from {{ model }}
    where {{ column_name }} is not null
),

conflicting as (
    select
        {{ column_name }},
        count(*) as versions
    from versions
    group by {{ column_name }}
    having count(*) > 1
)

select * from conflicting

{% endtest %}
