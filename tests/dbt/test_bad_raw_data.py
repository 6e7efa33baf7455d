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
