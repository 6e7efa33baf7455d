with products as (
    select * from {{ ref('stg_products') }}
),

final as (
    select
        product_id,
        product_name,
        product_category,
        product_subcategory,
        brand,
        price,
        cost,
        price - cost as unit_margin,
        100 * {{ safe_divide('price - cost', 'price') }} as unit_margin_pct,
        case
            when price < 500 then 'under_500'
            when price < 2000 then '500_to_1999'
            when price < 10000 then '2000_to_9999'
            else '10000_plus'
        end as price_band,
        product_weight_g,
        created_at,
        updated_at
    from products
)

select * from final
