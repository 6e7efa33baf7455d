with customers as (
    select * from {{ ref('stg_customers') }}
),

final as (
    select
        customer_id,
        customer_unique_id,
        first_name,
        last_name,
        email,
        {{ dbt.split_part('email', "'@'", 2) }} as email_domain,
        phone,
        customer_city,
        customer_state,
        customer_zip_code,
        signup_at,
        customer_signup_date,
        {{ month_start('customer_signup_date') }} as signup_cohort_month,
        updated_at
    from customers
)

select * from final
