{#- Lower bound on raw arrival time (_loaded_at) for an incremental run: the latest arrival already in the
    target minus var('incremental_lookback_hours'). Filtering on arrival time, not on the event's own
    timestamp, is what lets late events (old event_timestamp, new _loaded_at) in. -#}
{% macro incremental_arrival_cutoff(watermark_column='_loaded_at') -%}
    (
        select {{ dbt.dateadd('hour', -1 * var('incremental_lookback_hours'), 'max(' ~ watermark_column ~ ')') }}
        from {{ this }}
    )
{%- endmacro %}

{#- SQL list literal of the order statuses that are not sales. -#}
{% macro non_revenue_statuses() -%}
    ({% for status in var('non_revenue_order_statuses') %}'{{ status }}'{% if not loop.last %}, {% endif %}{% endfor %})
{%- endmacro %}
