-- One row per customer: profile, purchase behaviour, engagement, RFM segments and lifecycle stage.
-- Recency is measured against int_as_of (the latest order in the data unless var('as_of') pins it);
-- segment rules and thresholds: macros/customer_segments.sql and var('rfm').
with behavior as (
    select * from {{ ref('int_customer_behavior') }}
),

order_items as (
    select * from {{ ref('fct_order_items') }}
    where is_revenue_order
),

category_orders as (
    select
        customer_id,
        product_category,
        count(distinct order_id) as category_order_count,
        sum(line_amount) as category_spend
    from order_items
    where product_category is not null
    group by customer_id, product_category
),

ranked_categories as (
    select
        customer_id,
        product_category,
        row_number() over (
            partition by customer_id
            order by category_order_count desc, category_spend desc, product_category asc
        ) as preference_rank
    from category_orders
),

category_preferences as (
    select
        customer_id,
        max(case when preference_rank = 1 then product_category end) as preferred_product_category,
        max(case when preference_rank = 2 then product_category end) as second_preferred_category
    from ranked_categories
    group by customer_id
),

segmented as (
    select
        behavior.*,
        category_preferences.preferred_product_category,
        category_preferences.second_preferred_category,
        {{ recency_segment('behavior.days_since_last_order') }} as recency_segment,
        {{ frequency_segment('behavior.order_count') }} as frequency_segment,
        {{ monetary_segment('behavior.order_count', 'behavior.total_spend') }} as monetary_segment
    from behavior
    left join category_preferences on behavior.customer_id = category_preferences.customer_id
),

final as (
    select
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(customer_unique_id as {{ dbt.type_string() }}) as customer_unique_id,
        cast(customer_city as {{ dbt.type_string() }}) as customer_city,
        cast(customer_state as {{ dbt.type_string() }}) as customer_state,
        cast(customer_signup_date as date) as customer_signup_date,
        cast(customer_age_days as {{ dbt.type_int() }}) as customer_age_days,
        cast(order_count as {{ dbt.type_int() }}) as order_count,
        cast(total_spend as numeric(18, 2)) as total_spend,
        cast(avg_order_value as numeric(18, 2)) as avg_order_value,
        cast(first_order_date as date) as first_order_date,
        cast(last_order_date as date) as last_order_date,
        cast(days_since_last_order as {{ dbt.type_int() }}) as days_since_last_order,
        cast(purchase_frequency_days as numeric(18, 2)) as purchase_frequency_days,
        cast(website_visits as {{ dbt.type_int() }}) as website_visits,
        cast(product_views as {{ dbt.type_int() }}) as product_views,
        cast(cart_additions as {{ dbt.type_int() }}) as cart_additions,
        cast(abandoned_cart_count as {{ dbt.type_int() }}) as abandoned_cart_count,
        cast(email_open_rate as numeric(18, 2)) as email_open_rate,
        cast(email_click_rate as numeric(18, 2)) as email_click_rate,
        cast(preferred_product_category as {{ dbt.type_string() }}) as preferred_product_category,
        cast(second_preferred_category as {{ dbt.type_string() }}) as second_preferred_category,
        cast(recency_segment as {{ dbt.type_string() }}) as recency_segment,
        cast(frequency_segment as {{ dbt.type_string() }}) as frequency_segment,
        cast(monetary_segment as {{ dbt.type_string() }}) as monetary_segment,
        cast(
            {{ rfm_segment('order_count', 'recency_segment', 'frequency_segment', 'monetary_segment') }}
            as {{ dbt.type_string() }}
        ) as rfm_segment,
        cast(
            {{ lifecycle_stage('order_count', 'days_since_first_order', 'days_since_last_order',
                               'days_between_last_two_orders') }}
            as {{ dbt.type_string() }}
        ) as lifecycle_stage,
        cast(as_of_date as date) as as_of_date
    from segmented
)

select * from final
