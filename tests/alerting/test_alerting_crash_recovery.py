"""A deliverer that dies between Slack's answer and the outbox's record: the message is found, never posted twice.

Whatever happens after the crash (the lookup fails, the channel cools off, a second deliverer dies inside the
lookup, a cold sender's set-up outlasts its lease), the next attempt searches Slack from the first unconfirmed
send before it posts anything.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from functools import cached_property

import pytest

from include.vyapar.alerting.alert import Alert
from include.vyapar.alerting.delivery import build_senders, flush
from include.vyapar.alerting.senders import SlackSender
from include.vyapar.alerting.store import AlertStore
from tests.alerting.conftest import TEST_DELIVERY


class Crash(BaseException):
    """The deliverer's process dies (not an Exception: nothing in the flush may catch it)."""


def _die(*args, **kwargs):
    raise Crash


def _crash_after_posting(harness, monkeypatch, now: float | None = None) -> None:
    """One flush that posts to Slack and dies before recording it: the row is left `sending`."""
    with monkeypatch.context() as patched, pytest.raises(Crash):
        patched.setattr(AlertStore, "mark_sent", _die)
        harness.flush(now=now)
    assert [d["status"] for d in harness.store.list_deliveries(channel="slack")].count("sending") == 1


def _medium(subject: str, key: str) -> Alert:
    return Alert(kind="data_quality", subject=subject, dag_id="vyapar_facts", dedup_key=key)  # Slack only


@pytest.mark.parametrize("lookup_fault", ["429", "500"])
def test_a_failed_lookup_after_a_crash_is_retried_as_a_lookup_not_a_repost(harness, monkeypatch, lookup_fault):
    harness.store.enqueue(_medium("orders has null customer ids", "dq:orders"))
    _crash_after_posting(harness, monkeypatch)
    harness.slack.fail_next(1, lookup_fault, retry_after=1, methods=("conversations.history",))

    later = time.time() + 10  # the crashed lease (3 s) has run out
    report = harness.flush(now=later)
    assert report.retried == 1 and report.sent == 0
    assert harness.slack.count("conversations.history", f"fault:{lookup_fault}") == 1

    report = harness.flush(now=later + 30)  # the retry is due
    assert report.already_sent == 1 and report.sent == 0
    assert len(harness.slack.messages) == 1
    [delivery] = harness.store.list_deliveries(channel="slack")
    assert delivery["status"] == "sent" and delivery["provider_id"] == harness.slack.messages[0].ts


def test_a_crashed_delivery_deferred_by_a_cooling_channel_is_looked_up_not_reposted(harness, monkeypatch):
    harness.store.enqueue(_medium("orders has null customer ids", "dq:orders"))
    _crash_after_posting(harness, monkeypatch)
    # Another alert, due before the crashed one, meets a 500: the channel cools off for this flush.
    harness.store.enqueue(_medium("payments has duplicates", "dq:payments"), now=datetime.now(UTC) - timedelta(minutes=5))
    harness.slack.fail_next(1, "500")

    later = time.time() + 10
    report = harness.flush(now=later)
    assert report.retried == 1 and report.deferred == 1 and report.sent == 0

    report = harness.flush(now=later + 30)
    assert report.already_sent == 1 and report.sent == 1  # the crashed one found, the other one posted
    texts = [m.text for m in harness.slack.messages]
    assert sum("null customer ids" in t for t in texts) == 1 and sum("duplicates" in t for t in texts) == 1
    assert {d["status"] for d in harness.store.list_deliveries()} == {"sent"}


def test_a_second_crash_inside_the_lookup_still_searches_from_the_first_send(harness, monkeypatch):
    harness.store.enqueue(_medium("orders has null customer ids", "dq:orders"))
    _crash_after_posting(harness, monkeypatch)  # posted now

    # Minutes later a second deliverer takes the row over and dies while it searches Slack.
    with monkeypatch.context() as patched, pytest.raises(Crash):
        patched.setattr(SlackSender, "find_sent", _die)
        harness.flush(now=time.time() + 600)

    report = harness.flush(now=time.time() + 1200)  # a third one
    assert report.already_sent == 1 and report.sent == 0
    assert len(harness.slack.messages) == 1
    assert harness.store.list_deliveries(channel="slack")[0]["provider_id"] == harness.slack.messages[0].ts


def test_a_cold_senders_set_up_does_not_eat_its_lease(harness):
    """Deliverer A's sender needs seconds to set up (imports, connection); its lease must not be running meanwhile,
    or deliverer B takes the row over, finds nothing in Slack yet, and both post."""
    harness.store.enqueue(_medium("orders has null customer ids", "dq:orders"))
    in_set_up, go_on = threading.Event(), threading.Event()

    class ColdSlackSender(SlackSender):
        @cached_property
        def client(self):
            in_set_up.set()
            assert go_on.wait(30)
            return SlackSender.client.func(self)

    config = harness.store.config
    senders_a = {**build_senders(config), "slack": ColdSlackSender("slack_alerts", config.delivery.timeout_seconds)}
    store_a = AlertStore(harness.store.url, config=config)  # deliverer A: its own process, its own connections
    reports: list = []
    deliverer_a = threading.Thread(target=lambda: reports.append(flush(store=store_a, senders=senders_a)))
    deliverer_a.start()
    assert in_set_up.wait(30)

    def no_live_lease() -> bool:
        return all(d["lease_until"] is None or d["lease_until"] < time.time() for d in harness.store.list_deliveries())

    deadline = time.monotonic() + 2 * TEST_DELIVERY["lease_seconds"] + 5
    while not no_live_lease():
        assert time.monotonic() < deadline, "a lease outlived its lease_seconds"
        time.sleep(0.1)
    report_b = harness.flush()  # deliverer B, warm
    go_on.set()
    deliverer_a.join(60)
    assert not deliverer_a.is_alive()

    assert report_b.sent == 1
    assert len(harness.slack.messages) == 1, [m.text[:60] for m in harness.slack.messages]
    assert reports and reports[0].sent == 0
    store_a.engine.dispose()


def test_a_store_made_before_unconfirmed_since_existed_gains_the_column(harness):
    """An upgrade: stores created by an older version (SQLite here, PostgreSQL in test_alerting_store) get it."""
    import sqlalchemy as sa

    with harness.store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE deliveries DROP COLUMN unconfirmed_since")
    upgraded = AlertStore(harness.store.url, config=harness.store.config)
    assert "unconfirmed_since" in {c["name"] for c in sa.inspect(upgraded.engine).get_columns("deliveries")}
    upgraded.engine.dispose()
