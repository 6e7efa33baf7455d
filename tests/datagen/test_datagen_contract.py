"""The landed files honour the raw contract in schema.py: names, types, id formats, load metadata."""

from __future__ import annotations

import pyarrow.parquet as pq

from include.vyapar.data.datagen import TABLE_SCHEMAS, TABLES, table_row_counts
from include.vyapar.data.datagen.schema import landed_schema
from tests.datagen.conftest import landed_views, scalar

ID_PATTERNS = {
    ("customers", "customer_id"): r"^CUST\d{6}$",
    ("products", "product_id"): r"^PROD\d{5}$",
    ("orders", "order_id"): r"^ORD\d{7}$",
    ("order_items", "order_item_id"): r"^OI\d{8}$",
    ("payments", "payment_id"): r"^PAY\d{7}$",
    ("product_reviews", "review_id"): r"^REV\d{7}$",
    ("email_campaigns", "campaign_id"): r"^CMP\d{4}$",
    ("customers", "customer_zip_code"): r"^\d{6}$",
    ("customers", "customer_unique_id"): r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
}

ALLOWED_VALUES = {
    ("orders", "order_status"): {"created", "approved", "shipped", "delivered", "cancelled", "returned"},
    ("payments", "payment_type"): {"upi", "credit_card", "debit_card", "net_banking", "cod", "wallet"},
    ("clickstream", "event_type"): {"page_view", "product_view", "cart_add", "cart_remove", "checkout", "purchase"},
    ("clickstream", "page_type"): {"home", "category", "product", "search", "cart", "checkout", "order_confirmation"},
    ("clickstream", "device"): {"mobile", "desktop", "tablet"},
    ("clickstream", "browser"): {"chrome", "safari", "firefox", "edge", "samsung_internet", "opera"},
    ("clickstream", "utm_source"): {"google", "facebook", "instagram", "email", "direct", "whatsapp", None},
    ("products", "product_category"): {
        "Electronics",
        "Fashion",
        "Home & Kitchen",
        "Beauty & Personal Care",
        "Books",
        "Sports & Fitness",
        "Grocery",
        "Toys & Baby",
    },
    ("inventory", "warehouse_id"): {"WH-MUM", "WH-DEL", "WH-BLR"},
    ("email_campaigns", "campaign_type"): {"promotional", "newsletter", "cart_abandonment", "reactivation", "festival"},
    ("email_events", "event_type"): {"sent", "delivered", "open", "click", "bounce", "unsubscribe"},
}


def test_schema_matches_contract(with_arrivals):
    for table in TABLES:
        files = sorted((with_arrivals / table).glob("*.parquet"))
        assert [file.stem for file in files] == ["000000", "000001", "000002", "000003"], table
        for file in files:
            assert pq.read_schema(file).remove_metadata() == landed_schema(table), file


def test_contract_columns_and_duckdb_types(history):
    connection = landed_views(history)
    expected_types = {
        "string": "VARCHAR",
        "timestamp[us]": "TIMESTAMP",
        "date32[day]": "DATE",
        "double": "DOUBLE",
        "int32": "INTEGER",
    }
    for table, schema in TABLE_SCHEMAS.items():
        described = dict(connection.sql(f"describe {table}").fetchall()[i][:2] for i in range(len(schema) + 2))
        for field in schema:
            assert described[field.name] == expected_types[str(field.type)], (table, field.name)
        assert described["_loaded_at"] == "TIMESTAMP" and described["_batch_id"] == "VARCHAR"


def test_every_row_carries_its_batch_arrival(history):
    connection = landed_views(history)
    for table in TABLES:
        assert connection.sql(f"select distinct _loaded_at::varchar, _batch_id from {table}").fetchall() == [
            ("2026-11-26 10:00:00", "000000")
        ], table


def test_ids_are_formatted_and_unique(history):
    connection = landed_views(history)
    for (table, column), pattern in ID_PATTERNS.items():
        assert scalar(connection, f"select count(*) from {table} where not regexp_matches({column}, '{pattern}')") == 0
    for table, key in [
        ("customers", "customer_id"),
        ("products", "product_id"),
        ("orders", "order_id"),
        ("order_items", "order_item_id"),
        ("payments", "payment_id"),
        ("clickstream", "event_id"),
        ("product_reviews", "review_id"),
        ("email_campaigns", "campaign_id"),
        ("email_events", "email_event_id"),
    ]:
        assert scalar(connection, f"select count(*) - count(distinct {key}) from {table}") == 0, table
    assert scalar(connection, "select count(*) - count(distinct (snapshot_date, product_id)) from inventory") == 0


def test_categorical_columns_stay_in_their_domains(history):
    connection = landed_views(history)
    for (table, column), allowed in ALLOWED_VALUES.items():
        seen = {row[0] for row in connection.sql(f"select distinct {column} from {table}").fetchall()}
        assert seen <= allowed, (table, column, seen - allowed)


def test_row_counts_match_the_files(history):
    connection = landed_views(history)
    counts = table_row_counts(history)
    assert counts == {table: scalar(connection, f"select count(*) from {table}") for table in TABLES}
