"""Hourly arrivals append a batch that continues the history, with the mess real extracts carry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from include.vyapar.data.datagen import LandingNotEmptyError, generate_initial, land_next_batch, table_row_counts
from tests.datagen.conftest import AS_OF, SMALL_SCALE, landed_views, scalar

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_arrival_appends_batch_with_late_events_duplicates_and_status_updates(with_arrivals):
    db = landed_views(with_arrivals)
    for batch in ("000001", "000002", "000003"):
        in_batch = f"(select * from clickstream where _batch_id = '{batch}')"
        late = scalar(
            db,
            f"""select count(*) from {in_batch} where event_timestamp
                              between _loaded_at - interval 10 hour and _loaded_at - interval 2 hour""",
        )
        assert 1 <= late <= 0.2 * scalar(db, f"select count(*) from {in_batch}") + 1, batch
        resent = scalar(
            db,
            f"""select count(*) - count(distinct event_id) + (select count(*) from {in_batch} b
                                where exists (select 1 from clickstream a where a.event_id = b.event_id
                                              and a._batch_id < '{batch}')) from {in_batch}""",
        )
        assert resent >= 1, batch
    # A re-sent event is an exact copy: one distinct set of values per event_id.
    assert (
        scalar(
            db,
            """select count(*) from (select event_id from clickstream group by event_id having
        count(distinct (session_id, customer_id, event_timestamp, event_type, page_type, product_id, device,
                        browser, utm_source)) > 1)""",
        )
        == 0
    )

    moved = scalar(
        db,
        """select count(*) from orders later join orders earlier using (order_id)
                          where later._batch_id > earlier._batch_id and later.order_status <> earlier.order_status
                          and later.updated_at > earlier.updated_at""",
    )
    assert moved >= 1
    assert (
        scalar(
            db,
            "select count(*) from orders where _batch_id > '000000' and order_purchase_timestamp "
            "> timestamp '2026-11-26 10:00:00'",
        )
        >= 1
    )  # new orders too
    assert (
        scalar(
            db,
            "select count(*) - count(distinct (snapshot_date, product_id)) from inventory where _batch_id > '000000'",
        )
        > 0
    )  # today's snapshot re-sent every hour
    assert scalar(db, "select count(distinct _batch_id) from inventory where snapshot_date = date '2026-11-26'") == 4


def test_arrivals_continue_ids_and_clock_in_state(with_arrivals):
    state = json.loads((with_arrivals / "_state.json").read_text())
    assert state["next_batch"] == 4 and state["clock"] == "2026-11-26T13:00:00"
    db = landed_views(with_arrivals)
    for table, key in [
        ("customers", "customer_id"),
        ("order_items", "order_item_id"),
        ("payments", "payment_id"),
        ("product_reviews", "review_id"),
        ("email_events", "email_event_id"),
    ]:
        assert scalar(db, f"select count(*) - count(distinct {key}) from {table}") == 0, table
    loaded = db.sql("select _batch_id, min(_loaded_at)::varchar from orders group by 1 order by 1").fetchall()
    assert loaded == [
        ("000000", "2026-11-26 10:00:00"),
        ("000001", "2026-11-26 11:00:00"),
        ("000002", "2026-11-26 12:00:00"),
        ("000003", "2026-11-26 13:00:00"),
    ]


def test_arrival_at_explicit_time_stamps_loaded_at(tmp_path):
    generate_initial(tmp_path, scale=SMALL_SCALE, as_of="2026-11-20T06:00:00", progress=False)
    result = land_next_batch(tmp_path, at="2026-11-21T08:30:00")
    assert result["batch_id"] == "000001" and result["loaded_at"] == "2026-11-21T08:30:00"
    db = landed_views(tmp_path)
    stamps = db.sql("select distinct _loaded_at::varchar from clickstream where _batch_id = '000001'").fetchall()
    assert stamps == [("2026-11-21 08:30:00",)]
    assert scalar(db, "select max(event_timestamp) <= timestamp '2026-11-21 08:30:00' from clickstream")
    # A day and a half of catching up brings a day and a half of orders.
    assert result["rows"]["orders"] > 20 and result["rows"]["customers"] > 0


def test_arrival_in_the_past_is_refused(tmp_path):
    generate_initial(tmp_path, scale=SMALL_SCALE, as_of=AS_OF, progress=False)
    with pytest.raises(ValueError, match="must be after the last batch"):
        land_next_batch(tmp_path, at="2026-11-26T09:00:00")


def test_init_refuses_non_empty_landing_without_force(tmp_path):
    generate_initial(tmp_path, scale=SMALL_SCALE, as_of=AS_OF, progress=False)
    land_next_batch(tmp_path)
    with pytest.raises(LandingNotEmptyError):
        generate_initial(tmp_path, scale=SMALL_SCALE, as_of=AS_OF, progress=False)
    assert {path.stem for path in (tmp_path / "orders").glob("*.parquet")} == {"000000", "000001"}

    generate_initial(tmp_path, scale=SMALL_SCALE, as_of=AS_OF, force=True, progress=False)
    assert {path.stem for path in (tmp_path / "orders").glob("*.parquet")} == {"000000"}
    assert json.loads((tmp_path / "_state.json").read_text())["next_batch"] == 1


def test_no_temporary_files_are_left_behind(with_arrivals):
    leftovers = [path for path in with_arrivals.rglob("*") if path.is_file() and ".tmp-" in path.name]
    assert leftovers == []


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "include.vyapar.data.datagen", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_init_arrive_stats_and_refusal(tmp_path):
    landing = str(tmp_path)
    init = _cli("init", "--landing", landing, "--scale", "0.02", "--as-of", AS_OF, "--days", "30", "--quiet")
    assert init.returncode == 0, init.stderr
    assert init.stderr == ""  # --quiet means no progress bar

    refused = _cli("init", "--landing", landing, "--scale", "0.02", "--quiet")
    assert refused.returncode == 2 and "--force" in refused.stderr

    arrive = _cli("arrive", "--landing", landing, "--hours", "2", "--quiet")
    assert arrive.returncode == 0, arrive.stderr
    assert "000001, 000002" in arrive.stdout

    stats = _cli("stats", "--landing", landing)
    assert stats.returncode == 0
    counts = table_row_counts(tmp_path)
    assert f"{counts['clickstream']:,}" in stats.stdout and counts["clickstream"] > 2_000


def test_every_batch_is_recorded_in_the_ledger_even_for_tables_without_rows(tmp_path):
    import duckdb

    from include.vyapar.data.datagen import TABLES, generate_initial, land_next_batch

    generate_initial(tmp_path, scale=0.05, seed=5, as_of="2026-11-26T10:00:00", progress=False)
    land_next_batch(tmp_path)
    ledger = duckdb.sql(
        f"select batch_id, table_name, row_count, _loaded_at from read_parquet('{tmp_path}/_batches/*.parquet')"
    ).fetchall()
    assert {(b, t) for b, t, _, _ in ledger} == {(b, t) for b in ("000000", "000001") for t in TABLES}
    products = {b: (n, at) for b, t, n, at in ledger if t == "products"}
    assert products["000001"][0] == 0 and products["000001"][1].isoformat() == "2026-11-26T11:00:00"
