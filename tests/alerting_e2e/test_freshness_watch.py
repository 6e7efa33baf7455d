"""The freshness watcher DAG end to end: a feed with no load for over 2 hours → one high alert (Slack + email),
not one per check or per table; a new load → the recovery in the same Slack thread."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from include.vyapar.data.datagen import generate_initial, land_next_batch
from tests.airflow_runs import dags_test
from tests.alerting_e2e.conftest import text_of, wait_for

WATCH = "vyapar_freshness_watch"


def test_stale_feed_alerts_once_then_recovers_after_a_new_load(rig_factory, tmp_path):
    rig = rig_factory("freshness")
    landing = tmp_path / "landing"
    three_hours_ago = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(hours=3)
    generate_initial(landing, scale=0.01, seed=11, as_of=three_hours_ago, progress=False)
    env = {**rig.env(), "VYAPAR_LANDING_DIR": str(landing)}

    first = dags_test(WATCH, env=env)
    assert first.succeeded, first.output[-4000:]
    alert = wait_for(lambda: rig.top_level(), what="the stale-feed alert")[0]
    text = text_of(alert)
    assert "HIGH" in text.upper() and "stopped: 10 tables" in text and "3.0 h" in text
    assert "customers" in text and "clickstream" in text
    wait_for(lambda: rig.emails("stopped"), what="the stale-feed email")

    second = dags_test(WATCH, env=env)  # the next check, 10 minutes later: still stale, no new alert
    assert second.succeeded
    assert len(rig.top_level()) == 1 and len(rig.emails()) == 1

    land_next_batch(landing, at=datetime.now(UTC).replace(tzinfo=None, microsecond=0))
    third = dags_test(WATCH, env=env)
    assert third.succeeded
    wait_for(lambda: [m for m in rig.replies_to(alert) if "landing again" in text_of(m)], what="the recovery in the thread")
    assert len(rig.replies_to(alert)) == 1  # the recovery only: the feed alert already named its tables
    assert len(rig.top_level()) == 1
