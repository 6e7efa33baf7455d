with source as (
    select * from {{ source('vyaparbazaar_raw', 'product_reviews') }}
),

renamed as (
    select
        cast(review_id as {{ dbt.type_string() }}) as review_id,
        cast(order_id as {{ dbt.type_string() }}) as order_id,
        cast(product_id as {{ dbt.type_string() }}) as product_id,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        {{ dbt.safe_cast('review_score', dbt.type_int()) }} as review_score,
        trim(review_title) as review_title,
        {{ parse_timestamp('review_created_at') }} as review_created_at,
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as _loaded_at,
        cast(_batch_id as {{ dbt.type_string() }}) as _batch_id
    from source
    where review_id is not null
),

ranked as (
    select
        *,
        row_number() over (partition by review_id order by _loaded_at desc, _batch_id desc) as arrival_rank
    from renamed
),

latest as (
    select
        review_id,
        order_id,
        product_id,
        customer_id,
        review_score,
        review_title,
        review_created_at,
        _loaded_at,
        _batch_id
    from ranked
    where arrival_rank = 1
)

select * from latest
