-- Quantile RFM segments, a data-driven complement to the fixed-threshold segments of
-- mart_customer_overview. Each buying customer gets a 1-5 score per dimension from quintiles of the
-- buying population (5 = most recent / most frequent / highest spend; ties broken by customer_id so the
-- result is deterministic); the segment follows from the scores. Quintiles adapt to the data's scale, so
-- the segments stay balanced however spend levels drift; non-buyers are their own segment.
with features as (
    select * from {{ ref('ml_customer_features') }}
),

buyers as (
    select * from features where frequency_orders > 0
),

scored as (
    select
        customer_id,
        recency_days,
        frequency_orders,
        monetary_total_spend,
        ntile(5) over (order by recency_days desc, customer_id asc) as recency_score,
        ntile(5) over (order by frequency_orders, customer_id) as frequency_score,
        ntile(5) over (order by monetary_total_spend, customer_id) as monetary_score
    from buyers
),

segmented as (
    select
        features.customer_id,
        scored.recency_score,
        scored.frequency_score,
        scored.monetary_score,
        scored.recency_score + scored.frequency_score + scored.monetary_score as rfm_score,
        case
            when scored.customer_id is null then 'non_buyer'
            when scored.recency_score >= 4 and scored.frequency_score >= 4 and scored.monetary_score >= 4
                then 'champion'
            when scored.recency_score <= 2 and scored.frequency_score + scored.monetary_score >= 8
                then 'cannot_lose'
            when scored.recency_score + scored.frequency_score + scored.monetary_score >= 10 then 'loyal'
            when scored.recency_score >= 4 then 'recent_low_value'
            when scored.recency_score <= 2 then 'dormant'
            else 'needs_nurturing'
        end as segment
    from features
    left join scored on features.customer_id = scored.customer_id
),

final as (
    select
        customer_id,
        cast(recency_score as {{ dbt.type_int() }}) as recency_score,
        cast(frequency_score as {{ dbt.type_int() }}) as frequency_score,
        cast(monetary_score as {{ dbt.type_int() }}) as monetary_score,
        cast(rfm_score as {{ dbt.type_int() }}) as rfm_score,
        segment
    from segmented
)

select * from final
