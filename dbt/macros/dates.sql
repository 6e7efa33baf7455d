{#- Calendar attributes of a date expression, as select-list items. Weekday numbering is ISO
    (1 = Monday ... 7 = Sunday). The festival season (Navratri, Dussehra, Diwali) is September-November. -#}
{% macro get_date_parts(date_column) -%}
    cast(extract(year from {{ date_column }}) as integer) as year_number,
    cast(extract(quarter from {{ date_column }}) as integer) as quarter_number,
    cast(extract(month from {{ date_column }}) as integer) as month_number,
    cast(extract(day from {{ date_column }}) as integer) as day_of_month,
    cast(extract(isodow from {{ date_column }}) as integer) as day_of_week,
    cast({{ dbt.date_trunc('month', date_column) }} as date) as month_start_date,
    cast({{ dbt.date_trunc('week', date_column) }} as date) as week_start_date,
    extract(isodow from {{ date_column }}) in (6, 7) as is_weekend,
    extract(month from {{ date_column }}) between 9 and 11 as is_festival_season
{%- endmacro %}

{#- Whole days from a date/timestamp to the reference date (both truncated to dates). -#}
{% macro days_since(date_column, reference_date) -%}
    {{ dbt.datediff('cast(' ~ date_column ~ ' as date)', 'cast(' ~ reference_date ~ ' as date)', 'day') }}
{%- endmacro %}

{#- First day of the month of a date/timestamp, as a date. -#}
{% macro month_start(date_column) -%}
    cast({{ dbt.date_trunc('month', date_column) }} as date)
{%- endmacro %}

{#- Parse a raw value as a timestamp; an unparsable value becomes null (flagged by tests) instead of
    failing the run. -#}
{% macro parse_timestamp(column_name) -%}
    {{ dbt.safe_cast(column_name, api.Column.translate_type('timestamp')) }}
{%- endmacro %}

{% macro parse_date(column_name) -%}
    {{ dbt.safe_cast(column_name, api.Column.translate_type('date')) }}
{%- endmacro %}
