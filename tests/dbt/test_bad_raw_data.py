"""Malformed raw rows are dropped or nulled and flagged by warn-level tests; they never crash the run."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq
from warehouse_harness import AS_OF, Warehouse, rows


def test_unparsable_timestamp_and_null_key_warn_but_build_succeeds(tmp_path):
    wh = Warehouse(tmp_path)
    wh.land_initial(scale=0.01)
    loaded_at = datetime.fromisoformat(AS_OF)
    bad = pa.table(
        {
            "event_id": [None, "bad-timestamp-event"],
            "session_id": ["s-bad", "s-bad"],
            "customer_id": [None, None],
            "event_timestamp": ["2026-11-26 09:00:00", "not a time"],  # a batch where the column arrived as text
            "event_type": ["page_view", "page_view"],
            "page_type": ["home", "home"],
            "product_id": [None, None],
            "device": ["mobile", "mobile"],
            "browser": ["chrome", "chrome"],
            "utm_source": [None, None],
            "_loaded_at": pa.array([loaded_at, loaded_at], pa.timestamp("us")),
            "_batch_id": ["999999", "999999"],
        }
    )
    pq.write_table(bad, wh.landing / "clickstream" / "999999.parquet")

    result = wh.dbt("build", "--select", "path:models/staging", "--indirect-selection", "cautious")
    statuses = {r["unique_id"]: r["status"] for r in result.json("run_results.json")["results"]}

    def status_of(test_name: str) -> str:
        return next(status for uid, status in statuses.items() if uid.split(".")[2] == test_name)

    assert status_of("source_not_null_vyaparbazaar_raw_clickstream_event_id") == "warn"
    assert status_of("not_null_stg_clickstream_event_timestamp") == "warn"
    assert status_of("unique_stg_clickstream_event_id") == "pass"

    con = wh.warehouse()
    assert rows(con, "select event_timestamp from staging.stg_clickstream where event_id = 'bad-timestamp-event'") == [
        (None,)
    ]
    assert rows(con, "select count(*) from staging.stg_clickstream where event_id is null") == [(0,)]


def _batch(wh: Warehouse, table: str, batch: str, columns: dict) -> None:
    loaded_at = datetime.fromisoformat(AS_OF)
    n = len(next(iter(columns.values())))
    columns = {**columns, "_loaded_at": pa.array([loaded_at] * n, pa.timestamp("us")), "_batch_id": [batch] * n}
    pq.write_table(pa.table(columns), wh.landing / table / f"{batch}.parquet")


def _order_row(order_id, customer_id, status="created"):
    ts = datetime.fromisoformat(AS_OF)
    return {
        "order_id": [order_id], "customer_id": [customer_id], "order_status": [status],
        "order_purchase_timestamp": pa.array([ts], pa.timestamp("us")),
        "order_approved_at": pa.array([None], pa.timestamp("us")),
        "order_delivered_timestamp": pa.array([None], pa.timestamp("us")),
        "order_estimated_delivery_date": pa.array([ts.date()], pa.date32()),
        "updated_at": pa.array([ts], pa.timestamp("us")),
    }  # fmt: skip


def test_null_keys_and_duplicate_ids_warn_naming_the_table_and_keep_what_was_loaded(tmp_path):
    wh = Warehouse(tmp_path)
    wh.land_initial(scale=0.01)
    wh.dbt("build", "--select", "path:models/staging", "--indirect-selection", "buildable")
    with wh.warehouse() as con:
        orders_before = rows(con, "select count(*) from staging.stg_orders")[0][0]
        payments_before = rows(con, "select count(*) from staging.stg_payments")[0][0]
    with wh.raw() as raw:
        customer = rows(raw, "select customer_id from raw_customers limit 1")[0][0]
        payment = raw.execute("select * exclude (_loaded_at, _batch_id) from raw_payments limit 1").to_arrow_table()
    _batch(wh, "orders", "999998", _order_row(None, customer))  # a null primary key
    _batch(wh, "payments", "999998", {c: payment.column(c).to_pylist() for c in payment.column_names})  # same id again

    result = wh.dbt("build", "--select", "source:vyaparbazaar_raw", "path:models/staging", "--indirect-selection", "buildable")
    assert "Warning in test source_not_null_vyaparbazaar_raw_orders_order_id" in result.output
    assert "Warning in test source_unique_vyaparbazaar_raw_payments_payment_id" in result.output
    with wh.warehouse() as con:
        assert rows(con, "select count(*) from staging.stg_orders")[0][0] == orders_before
        assert rows(con, "select count(*) from staging.stg_payments")[0][0] == payments_before
        assert rows(con, "select count(*) from staging.stg_orders where order_id is null") == [(0,)]


def test_failed_staging_run_keeps_the_tables_already_built(tmp_path):
    """A batch dbt cannot read fails the run with the file named; the tables built before stay intact."""
    wh = Warehouse(tmp_path)
    wh.land_initial(scale=0.01)
    wh.dbt("build", "--select", "path:models/staging", "--indirect-selection", "buildable")
    with wh.warehouse() as con:
        before = rows(con, "select count(*) from staging.stg_orders")[0][0]
    (wh.landing / "orders" / "999997.parquet").write_bytes(b"PAR1 this is not parquet")
    result = wh.dbt("run", "--select", "stg_orders", check=False)
    assert result.returncode != 0
    assert "999997.parquet" in result.output
    with wh.warehouse() as con:
        assert rows(con, "select count(*) from staging.stg_orders")[0][0] == before
