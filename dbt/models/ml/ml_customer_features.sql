-- One row per customer of purely numeric features for churn / propensity models. Nulls are kept where a
-- value is undefined (e.g. recency of a customer who never ordered) so the modeller chooses the imputation.
with behavior as (
    select * from {{ ref('int_customer_behavior') }}
),

order_items as (
    select * from {{ ref('fct_order_items') }}
    where is_revenue_order
),

payments as (
    select * from {{ ref('stg_payments') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
    where is_revenue_order
),

reviews as (
    select * from {{ ref('stg_product_reviews') }}
),

item_features as (
    select
        customer_id,
        count(distinct product_category) as distinct_categories_purchased,
        count(distinct product_id) as distinct_products_purchased,
        sum(quantity) as units_purchased,
        sum(discount_amount) as total_discount,
        sum(gross_amount) as total_gross_amount
    from order_items
    group by customer_id
),

payment_features as (
    select
        orders.customer_id,
        count(*) as payment_count,
        sum(case when payments.payment_type = 'cod' then 1 else 0 end) as cod_payment_count,
        sum(case when payments.payment_installments > 1 then 1 else 0 end) as installment_payment_count
    from payments
    inner join orders on payments.order_id = orders.order_id
    group by orders.customer_id
),

review_features as (
    select
        customer_id,
        count(*) as review_count,
        avg(cast(review_score as {{ dbt.type_float() }})) as avg_review_score
    from reviews
    where customer_id is not null
    group by customer_id
),

final as (
    select
        behavior.customer_id,
        cast(behavior.days_since_last_order as {{ dbt.type_int() }}) as recency_days,
        cast(behavior.order_count as {{ dbt.type_int() }}) as frequency_orders,
        cast(behavior.total_spend as {{ dbt.type_float() }}) as monetary_total_spend,
        cast(behavior.avg_order_value as {{ dbt.type_float() }}) as avg_order_value,
        cast(behavior.customer_age_days as {{ dbt.type_int() }}) as tenure_days,
        cast(behavior.customer_lifetime_days as {{ dbt.type_int() }}) as purchase_span_days,
        cast(behavior.purchase_frequency_days as {{ dbt.type_float() }}) as purchase_frequency_days,
        cast(behavior.website_visits as {{ dbt.type_int() }}) as website_visits,
        cast(behavior.product_views as {{ dbt.type_int() }}) as product_views,
        cast(behavior.cart_additions as {{ dbt.type_int() }}) as cart_additions,
        cast(behavior.abandoned_cart_count as {{ dbt.type_int() }}) as abandoned_cart_count,
        {{ safe_divide('behavior.abandoned_cart_count', 'behavior.website_visits') }} as cart_abandonment_rate,
        {{ safe_divide('behavior.order_count', 'behavior.product_views') }} as orders_per_product_view,
        cast(behavior.email_open_rate / 100 as {{ dbt.type_float() }}) as email_open_rate,
        cast(behavior.email_click_rate / 100 as {{ dbt.type_float() }}) as email_click_rate,
        cast(coalesce(item_features.distinct_categories_purchased, 0) as {{ dbt.type_int() }})
            as distinct_categories_purchased,
        cast(coalesce(item_features.distinct_products_purchased, 0) as {{ dbt.type_int() }})
            as distinct_products_purchased,
        cast(coalesce(item_features.units_purchased, 0) as {{ dbt.type_int() }}) as units_purchased,
        {{ safe_divide('item_features.total_discount', 'item_features.total_gross_amount') }} as discount_share,
        {{ safe_divide('payment_features.cod_payment_count', 'payment_features.payment_count') }} as cod_payment_share,
        {{ safe_divide('payment_features.installment_payment_count', 'payment_features.payment_count') }}
            as installment_payment_share,
        cast(coalesce(review_features.review_count, 0) as {{ dbt.type_int() }}) as review_count,
        review_features.avg_review_score
    from behavior
    left join item_features on behavior.customer_id = item_features.customer_id
    left join payment_features on behavior.customer_id = payment_features.customer_id
    left join review_features on behavior.customer_id = review_features.customer_id
)

select * from final
