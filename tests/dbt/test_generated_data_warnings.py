"""What the data generator produces by design (late events, re-sent duplicates) warns no one; a real anomaly still
warns: a collector flushing a backlog of old events, an event_id re-sent with different content."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from warehouse_harness import Warehouse, rows

LATE_TEST = "warn_late_arriving_clickstream_events"
RESEND_TEST = "source_clickstream_event_id_resends_are_identical"


def _statuses(result) -> dict[str, str]:
    """Node name (a generic test's unique_id ends in a hash) -> status."""
    return {r["unique_id"].split(".")[2]: r["status"] for r in result.json("run_results.json")["results"]}


def _not_passing(result) -> dict[str, str]:
    return {name: status for name, status in _statuses(result).items() if status not in ("success", "pass")}


@pytest.fixture(scope="module")
def hourly(tmp_path_factory) -> Warehouse:
    """History, then six hourly arrivals (each with ~5% late events and re-sent duplicates), built as they land."""
    wh = Warehouse(tmp_path_factory.mktemp("generated_warnings"))
    wh.land_initial()
    wh.dbt("build")
    for _ in range(6):
        wh.arrive()
    return wh


def test_the_generators_late_events_and_resends_warn_no_one(hourly):
    raw = hourly.raw()
    (events, distinct), = rows(raw, "select count(*), count(distinct event_id) from raw_clickstream")  # fmt: skip
    (late,) = rows(raw, "select count(*) from raw_clickstream where _batch_id <> (select min(_batch_id) from "
                        "raw_clickstream) and event_timestamp < _loaded_at - interval 3 hour")[0]  # fmt: skip
    assert events > distinct and late > 0, "the generator re-sends and delivers late events: what this test is about"

    result = hourly.dbt("build")
    assert _not_passing(result) == {}, "a warning on our own generated data would page someone"
    assert {LATE_TEST, RESEND_TEST} <= set(_statuses(result))


def test_a_backlog_of_old_events_and_a_changed_resend_still_warn(hourly, tmp_path):
    wh = Warehouse(tmp_path)
    shutil.copytree(hourly.landing, wh.landing)
    shutil.copy(hourly.duckdb_path, wh.duckdb_path)
    clickstream = wh.landing / "clickstream"
    latest = pq.read_table(sorted(clickstream.glob("*.parquet"))[-1])
    loaded_at = max(latest["_loaded_at"].to_pylist()) + timedelta(minutes=30)
    # A collector flushes 100 events buffered for a day, and re-sends one event_id with another event_type.
    template = latest.slice(0, 1).to_pylist()[0]
    backlog = [
        {**template, "event_id": f"backlog-{i}", "event_timestamp": loaded_at - timedelta(hours=24, minutes=i),
         "_loaded_at": loaded_at, "_batch_id": "zz_backlog"}
        for i in range(100)
    ]  # fmt: skip
    changed = {**template, "event_type": "purchase" if template["event_type"] != "purchase" else "page_view",
               "_loaded_at": loaded_at, "_batch_id": "zz_backlog"}  # fmt: skip
    pq.write_table(pa.Table.from_pylist([*backlog, changed], schema=latest.schema), clickstream / "zz_backlog.parquet")

    result = wh.dbt("build", "--select", "source:vyaparbazaar_raw.clickstream", "stg_clickstream")
    assert _not_passing(result) == {LATE_TEST: "warn", RESEND_TEST: "warn"}
