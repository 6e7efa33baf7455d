-- One row per (snapshot_date, product_id): today's snapshot is re-sent hourly; the latest arrival wins.
with source as (
    select * from {{ source('vyaparbazaar_raw', 'inventory') }}
),

renamed as (
    select
        {{ parse_date('snapshot_date') }} as snapshot_date,
        cast(product_id as {{ dbt.type_string() }}) as product_id,
        cast(warehouse_id as {{ dbt.type_string() }}) as warehouse_id,
        {{ dbt.safe_cast('stock_level', dbt.type_int()) }} as stock_level,
        {{ dbt.safe_cast('daily_sales_rate', dbt.type_float()) }} as daily_sales_rate,
        {{ dbt.safe_cast('reorder_point', dbt.type_int()) }} as reorder_point,
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as _loaded_at,
        cast(_batch_id as {{ dbt.type_string() }}) as _batch_id
    from source
    where snapshot_date is not null
        and product_id is not null
),

ranked as (
    select
        *,
        row_number() over (
            partition by snapshot_date, product_id
            order by _loaded_at desc, _batch_id desc
        ) as arrival_rank
    from renamed
),

latest as (
    select
        snapshot_date,
        product_id,
        warehouse_id,
        stock_level,
        daily_sales_rate,
        reorder_point,
        _loaded_at,
        _batch_id
    from ranked
    where arrival_rank = 1
        and snapshot_date is not null
)

select * from latest
