-- One row per customer. Orders, clickstream and email engagement are each aggregated to the customer grain
-- separately and only then joined to customers, so no metric is multiplied by another table's rows.
-- Order metrics count sales orders only (status not in var('non_revenue_order_statuses')).
with customers as (
    select * from {{ ref('stg_customers') }}
),

orders as (
    select * from {{ ref('int_orders_enriched') }}
    where is_revenue_order
),

clickstream as (
    select * from {{ ref('stg_clickstream') }}
    where customer_id is not null
),

email_events as (
    select * from {{ ref('stg_email_events') }}
    where customer_id is not null
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

ranked_orders as (
    select
        customer_id,
        order_date,
        order_total,
        row_number() over (
            partition by customer_id order by order_purchase_timestamp desc, order_id desc
        ) as recency_rank
    from orders
),

order_metrics as (
    select
        customer_id,
        count(*) as order_count,
        sum(order_total) as total_spend,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date,
        max(case when recency_rank = 2 then order_date end) as previous_order_date
    from ranked_orders
    group by customer_id
),

cart_sessions as (
    select
        customer_id,
        session_id,
        max(case when event_type = 'cart_add' then 1 else 0 end) as has_cart_add,
        max(case when event_type = 'purchase' then 1 else 0 end) as has_purchase
    from clickstream
    group by customer_id, session_id
),

session_metrics as (
    select
        customer_id,
        count(*) as website_visits,
        sum(case when has_cart_add = 1 and has_purchase = 0 then 1 else 0 end) as abandoned_cart_count
    from cart_sessions
    group by customer_id
),

event_metrics as (
    select
        customer_id,
        count(*) as total_events,
        sum(case when event_type = 'product_view' then 1 else 0 end) as product_views,
        sum(case when event_type = 'cart_add' then 1 else 0 end) as cart_additions,
        sum(case when event_type = 'purchase' then 1 else 0 end) as purchase_events,
        max(event_timestamp) as last_event_at
    from clickstream
    group by customer_id
),

-- per (customer, campaign): an open or click implies the email was delivered
campaign_engagement as (
    select
        customer_id,
        campaign_id,
        max(case when event_type = 'sent' then 1 else 0 end) as was_sent,
        max(case when event_type in ('delivered', 'open', 'click') then 1 else 0 end) as was_delivered,
        max(case when event_type = 'open' then 1 else 0 end) as was_opened,
        max(case when event_type = 'click' then 1 else 0 end) as was_clicked
    from email_events
    group by customer_id, campaign_id
),

email_metrics as (
    select
        customer_id,
        sum(was_sent) as emails_sent,
        sum(was_delivered) as emails_delivered,
        sum(was_opened) as emails_opened,
        sum(was_clicked) as emails_clicked
    from campaign_engagement
    group by customer_id
),

joined as (
    select
        customers.customer_id,
        customers.customer_unique_id,
        customers.customer_city,
        customers.customer_state,
        customers.customer_signup_date,
        {{ days_since('customers.customer_signup_date', 'as_of.as_of_date') }} as customer_age_days,
        coalesce(order_metrics.order_count, 0) as order_count,
        coalesce(order_metrics.total_spend, 0) as total_spend,
        {{ safe_divide('order_metrics.total_spend', 'order_metrics.order_count') }} as avg_order_value,
        order_metrics.first_order_date,
        order_metrics.last_order_date,
        order_metrics.previous_order_date,
        {{ days_since('order_metrics.first_order_date', 'as_of.as_of_date') }} as days_since_first_order,
        {{ days_since('order_metrics.last_order_date', 'as_of.as_of_date') }} as days_since_last_order,
        {{ dbt.datediff('order_metrics.previous_order_date', 'order_metrics.last_order_date', 'day') }}
            as days_between_last_two_orders,
        {{ dbt.datediff('order_metrics.first_order_date', 'order_metrics.last_order_date', 'day') }}
            as customer_lifetime_days,
        case
            when order_metrics.order_count >= 2
                then {{ safe_divide(
                    dbt.datediff('order_metrics.first_order_date', 'order_metrics.last_order_date', 'day'),
                    'order_metrics.order_count - 1') }}
        end as purchase_frequency_days,
        coalesce(session_metrics.website_visits, 0) as website_visits,
        coalesce(event_metrics.total_events, 0) as total_events,
        coalesce(event_metrics.product_views, 0) as product_views,
        coalesce(event_metrics.cart_additions, 0) as cart_additions,
        coalesce(event_metrics.purchase_events, 0) as purchase_events,
        coalesce(session_metrics.abandoned_cart_count, 0) as abandoned_cart_count,
        event_metrics.last_event_at,
        coalesce(email_metrics.emails_sent, 0) as emails_sent,
        coalesce(email_metrics.emails_delivered, 0) as emails_delivered,
        coalesce(email_metrics.emails_opened, 0) as emails_opened,
        coalesce(email_metrics.emails_clicked, 0) as emails_clicked,
        100 * {{ safe_divide('email_metrics.emails_opened', 'email_metrics.emails_delivered') }} as email_open_rate,
        100 * {{ safe_divide('email_metrics.emails_clicked', 'email_metrics.emails_delivered') }} as email_click_rate,
        as_of.as_of_date
    from customers
    cross join as_of
    left join order_metrics on customers.customer_id = order_metrics.customer_id
    left join session_metrics on customers.customer_id = session_metrics.customer_id
    left join event_metrics on customers.customer_id = event_metrics.customer_id
    left join email_metrics on customers.customer_id = email_metrics.customer_id
)

select * from joined
