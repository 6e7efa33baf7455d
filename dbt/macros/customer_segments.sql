{#- Rule-based RFM and lifecycle segmentation. The thresholds live in dbt_project.yml (var 'rfm'); these
    macros are the only place the rules are written. Customers without orders get a null R/F/M segment. -#}

{% macro rfm_var(name) -%}{{ var('rfm')[name] }}{%- endmacro %}

{% macro recency_segment(days_since_last_order) -%}
    case
        when {{ days_since_last_order }} is null then null
        when {{ days_since_last_order }} <= {{ rfm_var('recency_recent_max_days') }} then 'Recent'
        when {{ days_since_last_order }} <= {{ rfm_var('recency_moderate_max_days') }} then 'Moderate'
        else 'Lapsed'
    end
{%- endmacro %}

{% macro frequency_segment(order_count) -%}
    case
        when coalesce({{ order_count }}, 0) = 0 then null
        when {{ order_count }} >= {{ rfm_var('frequency_high_min_orders') }} then 'High'
        when {{ order_count }} >= {{ rfm_var('frequency_medium_min_orders') }} then 'Medium'
        when {{ order_count }} >= 2 then 'Low'
        else 'One-time'
    end
{%- endmacro %}

{% macro monetary_segment(order_count, total_spend) -%}
    case
        when coalesce({{ order_count }}, 0) = 0 then null
        when {{ total_spend }} >= {{ rfm_var('monetary_high_min_spend') }} then 'High'
        when {{ total_spend }} >= {{ rfm_var('monetary_medium_min_spend') }} then 'Medium'
        else 'Low'
    end
{%- endmacro %}

{#- Arguments are the three segment expressions above plus the order count. First matching rule wins. -#}
{% macro rfm_segment(order_count, recency, frequency, monetary) -%}
    case
        when coalesce({{ order_count }}, 0) = 0 then 'Prospects'
        when {{ recency }} = 'Recent' and {{ frequency }} in ('High', 'Medium') and {{ monetary }} = 'High'
            then 'Champions'
        when {{ recency }} in ('Recent', 'Moderate') and {{ frequency }} in ('High', 'Medium')
            then 'Loyal Customers'
        when {{ recency }} = 'Lapsed' and {{ frequency }} in ('High', 'Medium', 'Low') then 'At Risk'
        when {{ recency }} = 'Recent' and {{ frequency }} = 'One-time' then 'New Customers'
        when {{ recency }} = 'Recent' then 'Potential Loyalists'
        when {{ recency }} = 'Moderate' then 'Needs Attention'
        else 'Hibernating'
    end
{%- endmacro %}

{% macro lifecycle_stage(order_count, days_since_first_order, days_since_last_order, days_between_last_two_orders) -%}
    case
        when coalesce({{ order_count }}, 0) = 0 then 'Prospect'
        when {{ days_since_last_order }} > {{ rfm_var('lifecycle_churned_min_days') }} then 'Churned'
        when {{ days_since_last_order }} > {{ rfm_var('lifecycle_at_risk_min_days') }} then 'At Risk'
        when {{ days_since_first_order }} <= {{ rfm_var('lifecycle_new_max_days') }} then 'New'
        when {{ days_between_last_two_orders }} > {{ rfm_var('reactivation_gap_days') }} then 'Reactivated'
        else 'Active'
    end
{%- endmacro %}
