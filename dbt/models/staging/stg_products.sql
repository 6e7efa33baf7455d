with source as (
    select * from {{ source('vyaparbazaar_raw', 'products') }}
),

renamed as (
    select
        cast(product_id as {{ dbt.type_string() }}) as product_id,
        trim(product_name) as product_name,
        trim(product_category) as product_category,
        trim(product_subcategory) as product_subcategory,
        trim(brand) as brand,
        {{ dbt.safe_cast('price', dbt.type_float()) }} as price,
        {{ dbt.safe_cast('cost', dbt.type_float()) }} as cost,
        {{ dbt.safe_cast('product_weight_g', dbt.type_int()) }} as product_weight_g,
        {{ parse_timestamp('created_at') }} as created_at,
        {{ parse_timestamp('updated_at') }} as updated_at,
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as _loaded_at,
        cast(_batch_id as {{ dbt.type_string() }}) as _batch_id
    from source
    where product_id is not null
),

ranked as (
    select
        *,
        row_number() over (
            partition by product_id
            order by updated_at desc nulls last, _loaded_at desc, _batch_id desc
        ) as version_rank
    from renamed
),

latest as (
    select
        product_id,
        product_name,
        product_category,
        product_subcategory,
        brand,
        price,
        cost,
        product_weight_g,
        created_at,
        updated_at,
        _loaded_at,
        _batch_id
    from ranked
    where version_rank = 1
)

select * from latest
