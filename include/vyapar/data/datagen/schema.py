"""The raw landing contract: one pyarrow schema per table, the single source of truth for names and types.

dbt staging models are written against these; columns may be added, never renamed or retyped.
"""

from __future__ import annotations

import pyarrow as pa

TIMESTAMP = pa.timestamp("us")  # naive UTC everywhere

CUSTOMERS = pa.schema(
    [
        ("customer_id", pa.string()),
        ("customer_unique_id", pa.string()),
        ("first_name", pa.string()),
        ("last_name", pa.string()),
        ("email", pa.string()),
        ("phone", pa.string()),
        ("customer_city", pa.string()),
        ("customer_state", pa.string()),
        ("customer_zip_code", pa.string()),
        ("signup_at", TIMESTAMP),
        ("updated_at", TIMESTAMP),
    ]
)

PRODUCTS = pa.schema(
    [
        ("product_id", pa.string()),
        ("product_name", pa.string()),
        ("product_category", pa.string()),
        ("product_subcategory", pa.string()),
        ("brand", pa.string()),
        ("price", pa.float64()),
        ("cost", pa.float64()),
        ("product_weight_g", pa.int32()),
        ("created_at", TIMESTAMP),
        ("updated_at", TIMESTAMP),
    ]
)

ORDERS = pa.schema(
    [
        ("order_id", pa.string()),
        ("customer_id", pa.string()),
        ("order_status", pa.string()),
        ("order_purchase_timestamp", TIMESTAMP),
        ("order_approved_at", TIMESTAMP),
        ("order_delivered_timestamp", TIMESTAMP),
        ("order_estimated_delivery_date", pa.date32()),
        ("updated_at", TIMESTAMP),
    ]
)

ORDER_ITEMS = pa.schema(
    [
        ("order_item_id", pa.string()),
        ("order_id", pa.string()),
        ("line_number", pa.int32()),
        ("product_id", pa.string()),
        ("quantity", pa.int32()),
        ("unit_price", pa.float64()),
        ("discount_amount", pa.float64()),
        ("shipping_charge", pa.float64()),
    ]
)

PAYMENTS = pa.schema(
    [
        ("payment_id", pa.string()),
        ("order_id", pa.string()),
        ("payment_sequential", pa.int32()),
        ("payment_type", pa.string()),
        ("payment_installments", pa.int32()),
        ("payment_value", pa.float64()),
        ("paid_at", TIMESTAMP),
    ]
)

CLICKSTREAM = pa.schema(
    [
        ("event_id", pa.string()),
        ("session_id", pa.string()),
        ("customer_id", pa.string()),
        ("event_timestamp", TIMESTAMP),
        ("event_type", pa.string()),
        ("page_type", pa.string()),
        ("product_id", pa.string()),
        ("device", pa.string()),
        ("browser", pa.string()),
        ("utm_source", pa.string()),
    ]
)

INVENTORY = pa.schema(
    [
        ("snapshot_date", pa.date32()),
        ("product_id", pa.string()),
        ("warehouse_id", pa.string()),
        ("stock_level", pa.int32()),
        ("daily_sales_rate", pa.float64()),
        ("reorder_point", pa.int32()),
    ]
)

PRODUCT_REVIEWS = pa.schema(
    [
        ("review_id", pa.string()),
        ("order_id", pa.string()),
        ("product_id", pa.string()),
        ("customer_id", pa.string()),
        ("review_score", pa.int32()),
        ("review_title", pa.string()),
        ("review_created_at", TIMESTAMP),
    ]
)

EMAIL_CAMPAIGNS = pa.schema(
    [
        ("campaign_id", pa.string()),
        ("campaign_name", pa.string()),
        ("campaign_type", pa.string()),
        ("subject_line", pa.string()),
        ("sent_at", TIMESTAMP),
        ("created_at", TIMESTAMP),
    ]
)

EMAIL_EVENTS = pa.schema(
    [
        ("email_event_id", pa.string()),
        ("campaign_id", pa.string()),
        ("customer_id", pa.string()),
        ("event_type", pa.string()),
        ("event_timestamp", TIMESTAMP),
    ]
)

# Write order matters: parents land before children, so a reader never sees a dangling foreign key.
TABLE_SCHEMAS: dict[str, pa.Schema] = {
    "customers": CUSTOMERS,
    "products": PRODUCTS,
    "email_campaigns": EMAIL_CAMPAIGNS,
    "orders": ORDERS,
    "order_items": ORDER_ITEMS,
    "payments": PAYMENTS,
    "product_reviews": PRODUCT_REVIEWS,
    "inventory": INVENTORY,
    "email_events": EMAIL_EVENTS,
    "clickstream": CLICKSTREAM,
}
TABLES: tuple[str, ...] = tuple(TABLE_SCHEMAS)

LOAD_METADATA = [pa.field("_loaded_at", TIMESTAMP), pa.field("_batch_id", pa.string())]


def landed_schema(table: str) -> pa.Schema:
    """The schema of a landed file: the contract columns plus the extractor's load metadata."""
    schema = TABLE_SCHEMAS[table]
    for field in LOAD_METADATA:
        schema = schema.append(field)
    return schema
