"""Incremental models, built hour by hour as batches arrive, equal a full rebuild row for row."""

from __future__ import annotations

import pytest
from warehouse_harness import Warehouse, rows

INCREMENTAL = {
    "staging.stg_clickstream": "_dbt_processed_at",
    "core.fct_orders": "_dbt_processed_at",
    "core.fct_clickstream_daily": "_dbt_processed_at",
}
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
        if c != INCREMENTAL[table]
    ]
    select = ", ".join(columns)
    incremental = f"select {select} from {table}"
    full = f"select {select} from full_refresh.{table}"
    only_incremental = rows(con, f"{incremental} except all {full}")
    only_full = rows(con, f"{full} except all {incremental}")
    (count,) = con.execute(f"select count(*) from {table}").fetchone()
    assert count > 0
    assert only_incremental == [] and only_full == [], (only_incremental[:5], only_full[:5])
