"""Alert delivery on the `bin/start` platform: the raising process tries once, then the scheduler's sweeper retries
each delivery when it comes due (backoff, Slack's Retry-After), with no DAG run or other process helping."""

from __future__ import annotations

import json
import time

import pytest

from include.vyapar.alerting import config as alerting_config
from include.vyapar.alerting import store as alerting_store
from include.vyapar.alerting.alert import Alert
from include.vyapar.alerting.incidents import raise_alert
from tests.alerting_e2e.conftest import wait_for
from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.slow
RETRY_AFTER = 3
SWEEPER_STARTED = "vyapar alert sweeper: started"
SUBJECT = "orders has 12 null customer ids"


def test_a_delivery_meeting_500s_and_429s_is_retried_on_schedule_and_delivered_soon_after(paused_platform, monkeypatch):
    platform, slack = paused_platform, paused_platform["slack"]
    wait_for(lambda: SWEEPER_STARTED in platform["log"].read_text(), 300, "the sweeper to start in the scheduler")

    # This test process plays the failing task: it raises the alert into the platform's store, with the platform's
    # declarations and connections, makes the inline attempt, and is done. Slack answers 500 three times, then 429
    # (Retry-After) twice.
    for name, value in platform["env"].items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("VYAPAR_ALERT_STORE_URL", platform["store_url"])
    monkeypatch.setenv("VYAPAR_ALERTING_KICK", "1")
    alerting_config.get_config.cache_clear()
    alerting_store.get_store.cache_clear()
    try:
        store = alerting_store.get_store()
        policy = store.config.delivery
        # The platform is shared (tests/bin_start.py): what an earlier test raised is delivered before the faults.
        wait_for(lambda: store.next_due_at() is None, 300, "the platform's outbox to be empty")
        since = time.time()
        slack.fail_next(3, "500")
        slack.fail_next(2, "429", retry_after=RETRY_AFTER)
        raised_at = time.time()
        result = raise_alert(Alert(kind="data_quality", subject=SUBJECT, dag_id="vyapar_facts"))
        assert result.status == "open"

        [message] = wait_for(lambda: [m for m in slack.messages if SUBJECT in m.text], 400, "the alert in Slack")
        time.sleep(2)  # nothing more may arrive
        attempts = [(at, outcome) for at, outcome in slack.attempts_at("chat.postMessage") if at >= since]
        [delivery] = [d for d in store.list_deliveries(channel="slack") if d["created_at"] >= since]
    finally:
        alerting_store.get_store.cache_clear()
        alerting_config.get_config.cache_clear()

    assert [outcome for _, outcome in attempts] == ["fault:500"] * 3 + ["fault:429"] * 2 + ["ok"]
    assert len([m for m in slack.messages if SUBJECT in m.text]) == 1
    assert delivery["status"] == "sent" and delivery["attempts"] == 6

    times = [at for at, _ in attempts]
    planned = [policy.backoff_seconds * 2**n for n in range(3)] + [RETRY_AFTER] * 2  # backoff doubling; Retry-After
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    fault_cleared = times[4]  # Slack's last error answer
    figures = {
        "first_attempt_after_raise_seconds": round(times[0] - raised_at, 2),
        "planned_gaps_seconds": planned, "gaps_seconds": [round(g, 2) for g in gaps],
        "fault_cleared_to_delivered_seconds": round(times[5] - fault_cleared, 2),
        "raised_to_delivered_seconds": round(times[5] - raised_at, 2),
    }  # fmt: skip
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "bin_start_alert_delivery.json").write_text(json.dumps(figures, indent=2))

    assert times[0] - raised_at < 15, figures  # the inline attempt, at once (a cold process sets Slack up first)
    for gap, due in zip(gaps, planned, strict=True):  # each retry when it comes due, not at the next minute
        assert due - 0.5 <= gap <= due + 8, figures  # the sweeper looks every 5 s
    assert times[5] - fault_cleared <= 120, figures
