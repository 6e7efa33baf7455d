"""Incremental models, built hour by hour as batches arrive, equal a full rebuild row for row."""

from __future__ import annotations

import re
import shutil

import pytest
from warehouse_harness import Warehouse, rows

INCREMENTAL = {  # every incremental model: its unique key (and the column that differs between two builds)
    "staging.stg_clickstream": "event_id",
    "staging.stg_orders": "order_id",
    "staging.stg_order_items": "order_item_id",
    "staging.stg_payments": "payment_id",
    "intermediate.int_clickstream_events": "event_id",
    "intermediate.int_orders_enriched": "order_id",
    "core.fct_orders": "order_id",
    "core.fct_clickstream_daily": "event_date",
}
PROCESSED_AT = "_dbt_processed_at"
SELECTION = ("--select", "+fct_orders", "+fct_clickstream_daily")


@pytest.fixture(scope="module")
def hourly_and_full(tmp_path_factory) -> Warehouse:
    wh = Warehouse(tmp_path_factory.mktemp("incremental"))
    wh.land_initial()
    wh.dbt("run", *SELECTION)
    wh.arrive()
    wh.dbt("run", *SELECTION)
    wh.arrive()
    wh.dbt("run", *SELECTION)
    wh.arrive(hours=2)  # a missed hourly run: two batches land before the next build
    wh.dbt("run", *SELECTION)
    wh.arrive(at="2026-11-26T16:30:00")  # an irregular arrival
    result = wh.dbt("run", *SELECTION)
    compiled = (
        result.target_path / "compiled" / "vyaparbazaar" / "models" / "staging" / "stg_clickstream.sql"
    ).read_text()
    # incremental: the arrival cutoff is in the SQL, as a literal (macros/incremental.sql)
    assert "and _loaded_at > (" in compiled and "cast('2026-11-26" in compiled, "the last run should be incremental"
    shutil.copytree(result.target_path / "run", wh.root / "hourly-run")  # the full refresh below replaces it
    wh.dbt("run", "--full-refresh", *SELECTION, duckdb_path=wh.root / "full.duckdb")
    return wh


def test_arrivals_contain_late_events_duplicates_and_status_updates(hourly_and_full):
    raw = hourly_and_full.raw()
    (duplicates,) = raw.execute("select count(*) - count(distinct event_id) from raw_clickstream").fetchone()
    (late,) = raw.execute("""
        select count(*) from raw_clickstream
        where _batch_id <> '000000' and event_timestamp < _loaded_at - interval 2 hour""").fetchone()
    (resent_orders,) = raw.execute("select count(*) - count(distinct order_id) from raw_orders").fetchone()
    assert duplicates > 0 and late > 0 and resent_orders > 0


@pytest.mark.parametrize("table", sorted(INCREMENTAL))
def test_incremental_build_equals_full_refresh(hourly_and_full, table):
    con = hourly_and_full.warehouse()
    con.execute(f"attach if not exists '{hourly_and_full.root / 'full.duckdb'}' as full_refresh (read_only)")
    schema, name = table.split(".")
    columns = [
        c
        for (c,) in rows(
            con,
            f"""
        select column_name from information_schema.columns
        where table_schema = '{schema}' and table_name = '{name}' and table_catalog = current_database()
        order by ordinal_position""",
        )
        if c != PROCESSED_AT
    ]
    select = ", ".join(columns)
    incremental = f"select {select} from {table}"
    full = f"select {select} from full_refresh.{table}"
    only_incremental = rows(con, f"{incremental} except all {full}")
    only_full = rows(con, f"{full} except all {incremental}")
    (count,) = con.execute(f"select count(*) from {table}").fetchone()
    assert count > 0
    assert only_incremental == [] and only_full == [], (only_incremental[:5], only_full[:5])


@pytest.mark.parametrize("table", sorted(INCREMENTAL))
def test_a_full_build_stores_each_incremental_table_in_key_order(hourly_and_full, table):
    """macros/incremental.sql stored_in_order_of: the hourly deletes' key ranges then fall in a few row groups."""
    con = hourly_and_full.warehouse(hourly_and_full.root / "full.duckdb")
    key = INCREMENTAL[table]
    (out_of_order,) = con.execute(
        f"select count(*) from (select {key} < lag({key}) over (order by rowid) as back from {table}) where back"
    ).fetchone()
    (count,) = con.execute(f"select count(*) from {table}").fetchone()
    assert count > 0 and out_of_order == 0


def test_an_hourly_delete_reads_only_the_range_of_the_keys_it_replaces(hourly_and_full):
    """macros/delete_insert.sql: the last hourly run's delete carries the literal range of the arriving keys."""
    run_sql = hourly_and_full.root / "hourly-run" / "vyaparbazaar" / "models"
    hourly = (run_sql / "staging" / "stg_clickstream.sql").read_text()
    delete = " ".join(hourly[hourly.index("delete from") : hourly.index("insert into")].split())
    assert "where ( event_id) in ( select (event_id) from" in delete, delete
    bounds = re.search(r"event_id between cast\('([^']+)' as VARCHAR\) and cast\('([^']+)' as VARCHAR\)", delete)
    assert bounds, delete
    low, high = bounds.groups()
    # exactly the lowest and highest event_id that run replaced (its rows carry the run's processing time)
    (low_written, high_written) = (
        hourly_and_full.warehouse()
        .execute("""
            select min(event_id), max(event_id) from staging.stg_clickstream
            where _dbt_processed_at = (select max(_dbt_processed_at) from staging.stg_clickstream)""")
        .fetchone()
    )
    assert (low, high) == (low_written, high_written)
