-- One row per email campaign. Counts are unique recipients: an open or click implies delivery, so
-- delivered = recipients with a delivered, open or click event. Rates (percent): unique open rate and
-- click-through rate over delivered, click-to-open over openers, bounce and unsubscribe over sent.
-- Attribution (last click): each sales order is credited to the campaign whose email the customer clicked
-- most recently within var('email_attribution_window_days') days before the purchase.
with campaigns as (
    select * from {{ ref('stg_email_campaigns') }}
),

email_events as (
    select * from {{ ref('stg_email_events') }}
    where customer_id is not null
),

orders as (
    select * from {{ ref('fct_orders') }}
    where is_revenue_order
),

recipient_engagement as (
    select
        campaign_id,
        customer_id,
        max(case when event_type = 'sent' then 1 else 0 end) as was_sent,
        max(case when event_type in ('delivered', 'open', 'click') then 1 else 0 end) as was_delivered,
        max(case when event_type = 'open' then 1 else 0 end) as was_opened,
        max(case when event_type = 'click' then 1 else 0 end) as was_clicked,
        max(case when event_type = 'bounce' then 1 else 0 end) as was_bounced,
        max(case when event_type = 'unsubscribe' then 1 else 0 end) as was_unsubscribed,
        sum(case when event_type = 'open' then 1 else 0 end) as open_events,
        sum(case when event_type = 'click' then 1 else 0 end) as click_events
    from email_events
    group by campaign_id, customer_id
),

campaign_engagement as (
    select
        campaign_id,
        sum(was_sent) as recipients_sent,
        sum(was_delivered) as recipients_delivered,
        sum(was_opened) as unique_opens,
        sum(was_clicked) as unique_clicks,
        sum(was_bounced) as bounces,
        sum(was_unsubscribed) as unsubscribes,
        sum(open_events) as total_opens,
        sum(click_events) as total_clicks
    from recipient_engagement
    group by campaign_id
),

clicks as (
    select campaign_id, customer_id, event_timestamp as clicked_at
    from email_events
    where event_type = 'click'
        and event_timestamp is not null
),

order_click_candidates as (
    select
        orders.order_id,
        orders.order_total,
        clicks.campaign_id,
        row_number() over (
            partition by orders.order_id
            order by clicks.clicked_at desc, clicks.campaign_id desc
        ) as click_recency_rank
    from orders
    inner join clicks
        on orders.customer_id = clicks.customer_id
        and clicks.clicked_at <= orders.order_purchase_timestamp
        and orders.order_purchase_timestamp < {{ dbt.dateadd('day', var('email_attribution_window_days'), 'clicks.clicked_at') }}
),

attribution as (
    select
        campaign_id,
        count(*) as attributed_orders,
        sum(order_total) as attributed_revenue
    from order_click_candidates
    where click_recency_rank = 1
    group by campaign_id
),

joined as (
    select
        campaigns.campaign_id,
        campaigns.campaign_name,
        campaigns.campaign_type,
        campaigns.subject_line,
        campaigns.sent_at,
        coalesce(campaign_engagement.recipients_sent, 0) as recipients_sent,
        coalesce(campaign_engagement.recipients_delivered, 0) as recipients_delivered,
        coalesce(campaign_engagement.unique_opens, 0) as unique_opens,
        coalesce(campaign_engagement.unique_clicks, 0) as unique_clicks,
        coalesce(campaign_engagement.bounces, 0) as bounces,
        coalesce(campaign_engagement.unsubscribes, 0) as unsubscribes,
        coalesce(campaign_engagement.total_opens, 0) as total_opens,
        coalesce(campaign_engagement.total_clicks, 0) as total_clicks,
        100 * {{ safe_divide('campaign_engagement.unique_opens', 'campaign_engagement.recipients_delivered') }}
            as unique_open_rate_pct,
        100 * {{ safe_divide('campaign_engagement.unique_clicks', 'campaign_engagement.recipients_delivered') }}
            as click_through_rate_pct,
        100 * {{ safe_divide('campaign_engagement.unique_clicks', 'campaign_engagement.unique_opens') }}
            as click_to_open_rate_pct,
        100 * {{ safe_divide('campaign_engagement.bounces', 'campaign_engagement.recipients_sent') }}
            as bounce_rate_pct,
        100 * {{ safe_divide('campaign_engagement.unsubscribes', 'campaign_engagement.recipients_sent') }}
            as unsubscribe_rate_pct,
        coalesce(attribution.attributed_orders, 0) as attributed_orders,
        coalesce(attribution.attributed_revenue, 0) as attributed_revenue
    from campaigns
    left join campaign_engagement on campaigns.campaign_id = campaign_engagement.campaign_id
    left join attribution on campaigns.campaign_id = attribution.campaign_id
),

final as (
    select
        cast(campaign_id as {{ dbt.type_string() }}) as campaign_id,
        cast(campaign_name as {{ dbt.type_string() }}) as campaign_name,
        cast(campaign_type as {{ dbt.type_string() }}) as campaign_type,
        cast(subject_line as {{ dbt.type_string() }}) as subject_line,
        cast(sent_at as {{ dbt.type_timestamp() }}) as sent_at,
        cast(recipients_sent as {{ dbt.type_int() }}) as recipients_sent,
        cast(recipients_delivered as {{ dbt.type_int() }}) as recipients_delivered,
        cast(unique_opens as {{ dbt.type_int() }}) as unique_opens,
        cast(unique_clicks as {{ dbt.type_int() }}) as unique_clicks,
        cast(bounces as {{ dbt.type_int() }}) as bounces,
        cast(unsubscribes as {{ dbt.type_int() }}) as unsubscribes,
        cast(total_opens as {{ dbt.type_int() }}) as total_opens,
        cast(total_clicks as {{ dbt.type_int() }}) as total_clicks,
        cast(unique_open_rate_pct as numeric(18, 2)) as unique_open_rate_pct,
        cast(click_through_rate_pct as numeric(18, 2)) as click_through_rate_pct,
        cast(click_to_open_rate_pct as numeric(18, 2)) as click_to_open_rate_pct,
        cast(bounce_rate_pct as numeric(18, 2)) as bounce_rate_pct,
        cast(unsubscribe_rate_pct as numeric(18, 2)) as unsubscribe_rate_pct,
        cast(attributed_orders as {{ dbt.type_int() }}) as attributed_orders,
        cast(attributed_revenue as numeric(18, 2)) as attributed_revenue
    from joined
)

select * from final
