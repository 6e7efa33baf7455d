"""Delivery under failure: retries with backoff and Retry-After, dead letters, crash recovery, competing flushers."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from include.vyapar.alerting import Alert
from include.vyapar.alerting.delivery import flush
from include.vyapar.alerting.store import AlertStore, enqueue
from tests.alerting.conftest import failed_run
from tests.fakes.slack_server import fake_token


def _alerts_seen(messages) -> Counter:
    return Counter(m.metadata["event_payload"]["alert_id"] for m in messages if m.metadata)


def test_slack_500s_timeouts_and_429s_then_recovery_deliver_every_alert_exactly_once(harness):
    results = [enqueue(failed_run(dedup_key=f"failed_run:model_{n}", subject=f"model_{n} failed")) for n in range(5)]
    results += [enqueue(Alert(kind="data_quality", subject=f"test {n} failed", dedup_key=f"dq:{n}")) for n in range(3)]
    harness.slack.fail_next(2, "500")
    harness.slack.fail_next(1, "hang")
    harness.slack.fail_next(2, "500")

    reports = harness.drain(rounds=60, pause=0.3)
    assert sum(r.retried for r in reports) >= 4 and sum(r.dead for r in reports) == 0

    # A 429 with Retry-After: 1 holds Slack deliveries back for that second, then they go.
    late = [enqueue(failed_run(dedup_key=f"failed_run:late_{n}", subject=f"late {n}")) for n in range(2)]
    harness.slack.fail_next(1, "429", retry_after=1)
    limited_at = time.time()
    report = harness.flush()
    assert report.retried == 1 and report.deferred == 1  # the second Slack delivery is not even tried
    pending = harness.store.list_deliveries("pending", channel="slack")
    assert len(pending) == 2 and all(d["next_attempt_at"] >= limited_at + 0.99 for d in pending)
    assert harness.flush().sent == 0  # still inside Retry-After
    time.sleep(1.05)
    harness.drain()

    alert_ids = [r.alert_id for r in results + late]
    assert _alerts_seen(harness.slack.messages) == Counter(alert_ids)  # each exactly once
    assert len(harness.smtp.messages) == 7  # the high ones, each once
    assert harness.slack.count("chat.postMessage", "fault:429") == 1
    assert not harness.store.list_deliveries("dead")


def test_smtp_down_slack_still_delivered_email_after_smtp_returns(harness):
    harness.smtp.stop()
    result = enqueue(failed_run())
    report = harness.flush()
    assert report.sent == 1 and report.retried == 1
    assert len(harness.slack.messages) == 1
    [email] = harness.store.list_deliveries(channel="email")
    assert email["status"] == "pending" and "Connection refused" in email["last_error"]

    harness.smtp.start()  # same port
    harness.drain()
    assert len(harness.smtp.messages) == 1 and len(harness.slack.messages) == 1
    assert (
        harness.smtp.messages[0]["Message-ID"]
        == f"<vyapar-alert-delivery-{result.delivery_ids[1]}@vyaparbazaar.example>"
    )


@pytest.mark.parametrize("slack_error", ["invalid_auth", "channel_not_found", "invalid_blocks"])
def test_permanent_slack_errors_dead_letter_email_with_raw_error_and_alerting_degraded(
    harness, monkeypatch, slack_error
):
    if slack_error == "invalid_auth":  # a real wrong token, not a programmed fault
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", harness.slack.connection_json(token=fake_token("b", "revoked-token")))
    elif slack_error == "channel_not_found":  # a channel that does not exist in the workspace
        harness.reconfigure(
            slack={
                "connection_id": "slack_alerts",
                "channels": {
                    "low": "#data-alerts",
                    "medium": "#nope",
                    "high": "#data-oncall",
                    "critical": "#data-oncall",
                },
            }
        )
    else:
        harness.slack.fail_next(1, "error", error="invalid_blocks")
    harness.store.enqueue(Alert(kind="data_quality", subject="orders has 12 null customer ids", dag_id="vyapar_facts"))
    harness.store.enqueue(
        Alert(kind="data_quality", subject="payments has 3 duplicates", dag_id="vyapar_facts", dedup_key="dq:payments")
    )
    harness.drain()

    dead = harness.store.list_deliveries("dead", channel="slack")
    assert dead and all(d["attempts"] == 1 for d in dead)  # no endless retry
    assert all(slack_error in d["last_error"] for d in dead)
    dead_letters = [m for m in harness.smtp.messages if "could not be delivered to Slack" in harness.smtp.parts(m)[0]]
    assert len(dead_letters) == len({d["alert_id"] for d in dead if d["alert_id"] <= 2})
    assert (
        slack_error in harness.smtp.parts(dead_letters[0])[0] and slack_error in harness.smtp.parts(dead_letters[0])[1]
    )
    degraded = [m for m in harness.smtp.messages if "Alert delivery to slack is failing" in m["Subject"]]
    assert len(degraded) == 1  # one per outage, however many alerts died
    assert len(harness.store.list_alerts()) >= 3
    assert (
        sum(
            1
            for a in harness.store.list_alerts()
            if a["kind"] == "alerting_degraded" and a["status"] in ("open", "resolved")
        )
        == 1
    )


def test_crash_between_send_and_record_is_not_resent(harness, monkeypatch):
    enqueue(Alert(kind="data_quality", subject="crash test", dag_id="vyapar_facts"))

    class Crash(BaseException):
        """The flusher process dies right after Slack accepted the message."""

    def die(*args, **kwargs):
        raise Crash

    with monkeypatch.context() as patched, pytest.raises(Crash):
        patched.setattr(AlertStore, "mark_sent", die)
        harness.flush()
    assert len(harness.slack.messages) == 1
    [delivery] = harness.store.list_deliveries()
    assert delivery["status"] == "sending"

    assert harness.flush().claimed == 0  # lease still held: nobody touches it
    report = harness.flush(now=time.time() + 10)  # lease (3 s) expired
    assert report.already_sent == 1 and report.sent == 0
    assert len(harness.slack.messages) == 1
    [delivery] = harness.store.list_deliveries()
    assert delivery["status"] == "sent" and delivery["provider_id"] == harness.slack.messages[0].ts
    assert harness.slack.count("conversations.history") == 1


def test_two_flushers_never_send_the_same_delivery(harness):
    results = [enqueue(Alert(kind="data_quality", subject=f"check {n} failed", dedup_key=f"dq:{n}")) for n in range(30)]
    other = AlertStore(harness.store.url, config=harness.store.config)  # a second process's own engine
    start = threading.Barrier(2)
    reports = []

    def run(store):
        start.wait()
        reports.append(flush(store=store))

    threads = [threading.Thread(target=run, args=(s,)) for s in (harness.store, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(r.sent for r in reports) == 30 and all(r.sent > 0 for r in reports)
    assert _alerts_seen(harness.slack.messages) == Counter(r.alert_id for r in results)
    other.engine.dispose()


BROKEN_LOGGING = """
LOGGING_CONFIG = {
    "version": 1,
    "formatters": {"airflow": {"()": "no_such_module.Formatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "airflow"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}
"""


def test_an_error_in_the_delivering_process_is_never_a_permanent_failure(harness, tmp_path):
    """A process whose Airflow logging configuration does not load (a fresh install's flusher did:
    `ValueError: Unable to configure formatter 'airflow'`) cannot set up Slack; the delivery waits for a process
    that can, and nothing is dead-lettered or reported as failing."""
    import os
    import subprocess
    import sys

    from include.vyapar import settings

    enqueue(Alert(kind="data_quality", subject="orders has 12 null customer ids", dag_id="vyapar_facts"))
    (tmp_path / "broken_logging.py").write_text(BROKEN_LOGGING)
    env = {
        **os.environ, "AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS": "broken_logging.LOGGING_CONFIG",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(settings.REPO_ROOT)]),
    }  # fmt: skip
    code = "from include.vyapar.alerting.delivery import flush; print(flush())"
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]

    [delivery] = harness.store.list_deliveries()
    assert delivery["status"] == "pending" and delivery["attempts"] == 0, delivery  # not an attempt at Slack
    assert "Unable to configure formatter 'airflow'" in delivery["last_error"]
    assert not [a for a in harness.store.list_alerts() if a["kind"] == "alerting_degraded"]
    assert harness.slack.requests == []

    report = harness.flush(now=time.time() + 60)  # a healthy process (the sweeper) delivers it
    assert report.sent == 1 and len(harness.slack.messages) == 1
