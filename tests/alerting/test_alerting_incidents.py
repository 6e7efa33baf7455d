"""Routing, content, dedup, recovery threads, folding and silences, delivered to the fake Slack and real SMTP."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

from include.vyapar.alerting import Alert, task_log_url
from include.vyapar.alerting.store import enqueue
from tests.alerting.conftest import failed_run


def _slack_dump(message) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


def test_high_alert_goes_to_slack_and_email_with_full_content(harness):
    log_url = task_log_url(
        "http://airflow.test:8080", "vyapar_marts", "scheduled__2025-06-01T00:00:00+00:00", "marts.fct_daily_gmv_run", 2
    )
    assert log_url == (
        "http://airflow.test:8080/dags/vyapar_marts/runs/scheduled__2025-06-01T00%3A00%3A00%2B00%3A00"
        "/tasks/marts.fct_daily_gmv_run?try_number=2"
    )
    result = enqueue(failed_run(links={"Task log": log_url}))
    assert result.status == "open" and len(result.delivery_ids) == 2
    harness.drain()

    [message] = harness.slack.messages_in("#data-oncall")
    blocks = _slack_dump(message)
    expected = [
        "HIGH", "vyapar_marts: dbt model fct_daily_gmv failed", "vyapar_marts", "marts.fct_daily_gmv_run",
        "model.vyaparbazaar.fct_daily_gmv", "scheduled__2025-06-01T00:00:00+00:00", "0 rows vs ≥ 1 row",
        "Binder Error: column \\\"gmv_inr\\\" not found", "analytics-engineering",
    ]  # fmt: skip
    for text in expected:
        assert text in blocks, text
    buttons = {e["text"]["text"]: e["url"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]}
    assert buttons["Task log"] == log_url
    assert buttons["Runbook"] == "https://runbooks.vyaparbazaar.example/alerting.md#failed-run"
    assert message.metadata["event_type"] == "vyapar_alert"
    assert "fct_daily_gmv failed" in message.text  # the notification fallback

    [email] = harness.smtp.messages
    assert email["Subject"] == "[VyaparBazaar][HIGH] vyapar_marts: dbt model fct_daily_gmv failed"
    assert email["Message-ID"] == f"<vyapar-alert-delivery-{result.delivery_ids[1]}@vyaparbazaar.example>"
    assert harness.smtp.envelopes[0][1] == ["data-oncall@vyaparbazaar.example"]
    plain, html = harness.smtp.parts(email)
    for text in [t.replace('\\"', '"') for t in expected] + [
        "https://runbooks.vyaparbazaar.example/alerting.md#failed-run"
    ]:
        assert text in plain, text
    for text in ["HIGH", "vyapar_marts", "marts.fct_daily_gmv_run", "model.vyaparbazaar.fct_daily_gmv", "0 rows vs ≥ 1 row",
                 "column &quot;gmv_inr&quot; not found", "analytics-engineering", "failed-run"]:  # fmt: skip
        assert text in html, text
    assert log_url.replace("&", "&amp;") in html


def test_medium_goes_to_slack_only(harness):
    result = enqueue(Alert(kind="data_quality", subject="2 rows fail unique_fct_orders_order_id", dag_id="vyapar_facts",
                           node_id="test.vyaparbazaar.unique_fct_orders_order_id", facts={"Failing test": "unique_fct_orders_order_id", "Failures": 2}))  # fmt: skip
    assert result.status == "open"
    harness.drain()
    [message] = harness.slack.messages_in("#data-alerts")
    assert "MEDIUM" in message.blocks[0]["text"]["text"]
    assert "unique_fct_orders_order_id" in _slack_dump(message) and "*Failures*\\n2" in _slack_dump(message)
    assert harness.slack.messages_in("#data-oncall") == []
    assert harness.smtp.messages == []
    assert [d["channel"] for d in harness.store.list_deliveries()] == ["slack"]


def test_repeat_of_open_incident_is_not_delivered_again(harness):
    first = enqueue(failed_run())
    harness.drain()
    repeats = [enqueue(failed_run(error=f"attempt {n}")) for n in range(3)]
    harness.drain()
    assert {r.status for r in repeats} == {"repeat"} and all(r.incident_id == first.incident_id for r in repeats)
    assert len(harness.slack.messages) == 1 and len(harness.smtp.messages) == 1
    assert harness.store.incident(failed_run().dedup_key)["repeat_count"] == 3


def test_recovery_is_threaded_under_the_original(harness):
    original = enqueue(failed_run())
    harness.drain()
    [root] = harness.slack.messages
    recovery = enqueue(
        Alert(
            kind="recovered",
            subject="fct_daily_gmv succeeded on retry",
            recovery_of=failed_run().dedup_key,
            dag_id="vyapar_marts",
        )
    )
    assert recovery.status == "recovery" and recovery.incident_id == original.incident_id
    harness.drain()
    reply = harness.slack.messages[-1]
    assert reply.thread_ts == root.ts and reply.channel == root.channel
    assert "RESOLVED" in reply.blocks[0]["text"]["text"]
    assert len(harness.smtp.messages) == 2 and harness.smtp.messages[1]["Subject"].startswith(
        "[VyaparBazaar][RESOLVED]"
    )
    assert harness.store.incident(failed_run().dedup_key)["status"] == "resolved"
    # A second recovery has nothing to resolve; a new failure opens a new incident.
    assert enqueue(Alert(kind="recovered", subject="again", recovery_of=failed_run().dedup_key)).status == "dropped"
    assert enqueue(failed_run()).status == "open"


def test_recovery_sent_before_its_original_waits_to_thread(harness):
    enqueue(failed_run())
    enqueue(Alert(kind="recovered", subject="fixed", recovery_of=failed_run().dedup_key))
    harness.slack.fail_next(1, "500")  # the original's first attempt fails, so the recovery must wait for it
    harness.drain()
    root, reply = harness.slack.messages
    assert reply.thread_ts == root.ts


def test_downstream_failure_is_folded_into_the_upstream_incident(harness):
    stale = Alert(
        kind="stale_data",
        subject="raw.orders is 3h old (max 120 min)",
        node_id="source.vyaparbazaar.raw.orders",
        dedup_key="stale_data:raw.orders",
    )
    enqueue(stale)
    downstream = [
        enqueue(failed_run(node_id=f"model.vyaparbazaar.{name}", dedup_key=f"failed_run:{name}"), upstream_keys=["stale_data:raw.orders", "failed_run:stg_orders"])
        for name in ("fct_orders", "fct_daily_gmv", "mart_seller_scorecard")
    ]  # fmt: skip
    harness.drain()
    assert {r.status for r in downstream} == {"folded"}
    incident = harness.store.incident("stale_data:raw.orders")
    assert incident["affected"] == [
        f"model.vyaparbazaar.{n}" for n in ("fct_orders", "fct_daily_gmv", "mart_seller_scorecard")
    ]
    assert len(harness.slack.messages) == 1 and len(harness.smtp.messages) == 1  # only the root cause
    assert "fct_orders" not in _slack_dump(harness.slack.messages[0])
    # With no open upstream incident, the same failure stands on its own.
    assert (
        enqueue(failed_run(dedup_key="failed_run:other"), upstream_keys=["stale_data:raw.customers"]).status == "open"
    )


def test_silenced_dag_and_maintenance_window_suppress_and_log(harness, caplog):
    now = datetime.now(UTC)
    harness.reconfigure(silences=[{"dag_id": "vyapar_ml_*", "until": now + timedelta(hours=1), "reason": "feature store migration"},
                                  {"model": "fct_orders", "kind": "slow", "reason": "known slow after backfill"},
                                  {"dag_id": "vyapar_marts", "until": now - timedelta(minutes=1), "reason": "expired"}])  # fmt: skip
    caplog.set_level(logging.INFO, logger="include.vyapar.alerting")
    ml = harness.store.enqueue(failed_run(dag_id="vyapar_ml_features", dedup_key="failed_run:ml"))
    slow = harness.store.enqueue(
        Alert(kind="slow", subject="fct_orders took 2.1x its baseline", node_id="model.vyaparbazaar.fct_orders")
    )
    marts = harness.store.enqueue(failed_run())
    assert (ml.status, slow.status, marts.status) == ("silenced", "silenced", "open")
    assert "feature store migration" in ml.reason and "known slow after backfill" in slow.reason

    harness.reconfigure(
        maintenance_windows=[
            {"start": now - timedelta(minutes=5), "end": now + timedelta(minutes=55), "reason": "warehouse upgrade"}
        ]
    )
    during = harness.store.enqueue(failed_run(dedup_key="failed_run:during"))
    assert during.status == "silenced" and "warehouse upgrade" in during.reason
    harness.drain()

    assert len(harness.slack.messages) == 1 and "vyapar_marts" in _slack_dump(harness.slack.messages[0])
    silenced = harness.store.list_alerts("silenced")
    assert len(silenced) == 3 and all(a["note"].startswith("silenced by ") for a in silenced)
    logged = [r.getMessage() for r in caplog.records if "silenced by" in r.getMessage()]
    assert (
        len(logged) == 3
        and any("feature store migration" in m for m in logged)
        and any("warehouse upgrade" in m for m in logged)
    )


def test_raise_alert_delivers_from_the_raising_process_at_once(harness, monkeypatch):
    from include.vyapar.alerting import raise_alert

    monkeypatch.setenv("VYAPAR_ALERTING_KICK", "1")
    result = raise_alert(Alert(kind="data_quality", subject="raised", dag_id="vyapar_facts"))
    # The inline attempt was waited for: delivered before raise_alert returned, no other process involved.
    assert [m.text.splitlines()[0] for m in harness.slack.messages] == ["🟡 MEDIUM · raised"]
    assert [d["status"] for d in harness.store.list_deliveries()] == ["sent"]
    assert result.status == "open"


def test_webhook_is_used_when_no_bot_connection_is_configured(harness, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_WEBHOOK", harness.slack.webhook_connection_json())
    channels = {"low": "#data-alerts", "medium": "#data-alerts", "high": "#data-oncall", "critical": "#data-oncall"}
    harness.reconfigure(slack={"connection_id": None, "webhook_connection_id": "slack_webhook", "channels": channels})
    enqueue(Alert(kind="data_quality", subject="webhook <!here> test", dag_id="vyapar_facts"))
    harness.slack.fail_next(1, "500", methods=("webhook",))
    harness.drain()
    [message] = harness.slack.messages
    assert message.via == "webhook" and "webhook &lt;!here&gt; test" in message.text
    assert harness.slack.count("webhook", "fault:500") == 1
