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
from tests.deployment.test_local_start import bin_start
from tests.fakes.slack_server import FakeSlack
from tests.fakes.smtp_server import FakeSmtp

pytestmark = pytest.mark.slow
RETRY_AFTER = 5
SWEEPER_STARTED = "vyapar alert sweeper: started"


def test_a_delivery_meeting_500s_and_429s_is_retried_on_schedule_and_delivered_soon_after(tmp_path, monkeypatch):
    slack, smtp = FakeSlack().start(), FakeSmtp().start()
    connections = {"AIRFLOW_CONN_SLACK_ALERTS": slack.connection_json(), "AIRFLOW_CONN_SMTP_ALERTS": smtp.connection_json()}
    try:
        with bin_start(tmp_path, "bin_start_alert_delivery.log", **connections) as platform:
            wait_for(lambda: SWEEPER_STARTED in platform["log"].read_text(), 300, "the sweeper to start in the scheduler")

            # This test process plays the failing task: it raises the alert into the platform's store, makes the
            # inline attempt, and is done. Slack answers 500 three times, then 429 (Retry-After) twice.
            for name, value in connections.items():
                monkeypatch.setenv(name, value)
            monkeypatch.setenv("VYAPAR_ALERT_STORE_URL", f"sqlite:///{tmp_path / 'data' / 'alerts.sqlite'}")
            monkeypatch.setenv("VYAPAR_ALERTING_KICK", "1")
            monkeypatch.delenv("VYAPAR_ALERTING_CONFIG", raising=False)
            alerting_config.get_config.cache_clear()
            alerting_store.get_store.cache_clear()
            store = alerting_store.get_store()
            policy = store.config.delivery
            slack.fail_next(3, "500")
            slack.fail_next(2, "429", retry_after=RETRY_AFTER)
            raised_at = time.time()
            result = raise_alert(Alert(kind="data_quality", subject="orders has 12 null customer ids", dag_id="vyapar_facts"))
            assert result.status == "open"

            [message] = wait_for(lambda: slack.messages, 400, "the alert in Slack")
            time.sleep(2)  # nothing more may arrive
            attempts = slack.attempts_at("chat.postMessage")
            [delivery] = store.list_deliveries()
    finally:
        slack.stop()
        smtp.stop()
        alerting_store.get_store.cache_clear()
        alerting_config.get_config.cache_clear()

    assert [outcome for _, outcome in attempts] == ["fault:500"] * 3 + ["fault:429"] * 2 + ["ok"]
    assert len(slack.messages) == 1 and "orders has 12 null customer ids" in message.text
    assert delivery["status"] == "sent" and delivery["attempts"] == 6

    times = [at for at, _ in attempts]
    planned = [policy.backoff_seconds * 2**n for n in range(3)] + [RETRY_AFTER] * 2  # 10, 20, 40 s; Retry-After
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
