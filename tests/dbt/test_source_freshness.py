"""`dbt source freshness` passes on freshly landed data and errors when the last arrival is > 2 hours old."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from warehouse_harness import Warehouse


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _freshness(tmp_path, landed_at: datetime):
    wh = Warehouse(tmp_path)
    wh.land_initial(as_of=landed_at.isoformat(), scale=0.01)
    result = wh.dbt("source", "freshness", check=False)
    statuses = {r["unique_id"].split(".")[-1]: r["status"] for r in result.json("sources.json")["results"]}
    return result, statuses


def test_fresh_landing_passes(tmp_path):
    result, statuses = _freshness(tmp_path, _now() - timedelta(minutes=5))
    assert result.returncode == 0, result.output[-3000:]
    assert statuses and set(statuses.values()) == {"pass"}, statuses
    assert {"clickstream", "inventory"} <= set(statuses)


def test_landing_older_than_two_hours_errors(tmp_path):
    result, statuses = _freshness(tmp_path, _now() - timedelta(hours=3))
    assert result.returncode != 0
    assert set(statuses.values()) == {"error"}, statuses
