"""A bad file quarantined, fixed and put back hours later: the next incremental run brings its rows in.

Put back after the models' lookback (3 h of arrivals), its rows' original `_loaded_at` is older than any
incremental run reads; the landing check re-stamps them, so the hourly build equals a full refresh row for row.
"""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest
from test_incremental_models import INCREMENTAL, PROCESSED_AT, SELECTION
from warehouse_harness import Warehouse, rows

from include.vyapar.data.landing_checks import QUARANTINE_DIR, BadRawDataError, check_landing

BAD_FILES = ("orders", "order_items", "clickstream")  # revenue, and the sessions / daily clickstream facts


@pytest.fixture(scope="module")
def put_back_late(warehouse, tmp_path_factory) -> tuple[Warehouse, str]:
    """The shared warehouse (history built), then the hours of a quarantine and a late put-back, then a full
    refresh of the same landing folder into full.duckdb."""
    wh = Warehouse(tmp_path_factory.mktemp("put_back"))
    shutil.copytree(warehouse.landing, wh.landing)
    shutil.copy(warehouse.duckdb_path, wh.duckdb_path)

    arrived = wh.arrive(at="2026-11-26T15:00:00")  # five hours of an IST evening in one batch
    batch = arrived["batch_id"]
    good = {table: pq.read_table(wh.landing / table / f"{batch}.parquet") for table in BAD_FILES}
    for table in BAD_FILES:  # a column went missing upstream: quarantined, the rest of the batch flows on
        pq.write_table(good[table].drop_columns(["_batch_id"]), wh.landing / table / f"{batch}.parquet")
    with pytest.raises(BadRawDataError, match="missing column"):
        check_landing(wh.landing, batches=arrived["batch_ids"])

    later = wh.arrive(hours=4)  # the fix takes four hours, longer than the lookback; orders keep arriving
    check_landing(wh.landing, batches=later["batch_ids"])
    wh.dbt("run", *SELECTION)  # (one run for the five hours keeps the test short: the same watermark as hourly)

    for table in BAD_FILES:  # fixed in quarantine, moved back under its own name
        quarantined = wh.landing / QUARANTINE_DIR / table / f"{batch}.parquet"
        pq.write_table(good[table], quarantined)
        quarantined.rename(wh.landing / table / f"{batch}.parquet")
    check_landing(wh.landing, batches=later["batch_ids"][-1:])  # the next hourly check: its own batch only
    wh.dbt("run", *SELECTION)

    wh.dbt("run", "--full-refresh", *SELECTION, duckdb_path=wh.root / "full.duckdb")
    return wh, batch


def _with_full_refresh(wh: Warehouse):
    con = wh.warehouse()
    con.execute(f"attach if not exists '{wh.root / 'full.duckdb'}' as full_refresh (read_only)")
    return con


def _columns(con, table: str) -> str:
    schema, name = table.split(".")
    found = rows(
        con,
        f"""select column_name from information_schema.columns
        where table_schema = '{schema}' and table_name = '{name}' and table_catalog = current_database()
        order by ordinal_position""",
    )
    return ", ".join(c for (c,) in found if c != PROCESSED_AT)


@pytest.mark.parametrize("table", sorted(INCREMENTAL))
def test_rows_of_a_file_put_back_late_reach_every_incremental_table(put_back_late, table):
    con = _with_full_refresh(put_back_late[0])
    columns = _columns(con, table)
    incremental, full = f"select {columns} from {table}", f"select {columns} from full_refresh.{table}"
    only_incremental = rows(con, f"{incremental} except all {full}")
    only_full = rows(con, f"{full} except all {incremental}")
    assert only_incremental == [] and only_full == [], (len(only_incremental), len(only_full), only_full[:3])


def test_revenue_after_a_late_put_back_equals_a_full_refresh(put_back_late):
    revenue = "select sum(order_total), count(*) from {}core.fct_orders where is_revenue_order"
    wh, batch = put_back_late
    con = _with_full_refresh(wh)
    assert rows(con, revenue.format("")) == rows(con, revenue.format("full_refresh."))
    (put_back_items,) = con.execute(
        "select count(*) from staging.stg_order_items where _batch_id = ?", [batch]
    ).fetchone()
    assert put_back_items > 0  # the put-back file's rows are in, not merely absent from both
