"""One incident's life through real DAG runs: a model fails (one alert, after the last retry), a downstream model
fails because of it (folded: named in the incident's thread, no new alert), the fix recovers it in the same thread.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.alerting_e2e.conftest import (
    DAG_ID,
    FEATURES,
    FEATURES_TASK,
    SEGMENTS,
    SEGMENTS_TASK,
    WARN_TEST,
    run_id_of,
    task_instance,
    text_of,
    wait_for,
)

pytestmark = pytest.mark.slow
KEY = f"failed_run:{FEATURES}"


def _settled(rig) -> bool:
    store = rig.store
    return not store.list_deliveries("pending") and not store.list_deliveries("sending")


@pytest.fixture(scope="module")
def rig(rig_factory):
    return rig_factory("lifecycle")


@pytest.fixture(scope="module")
def failed(rig):
    """Run 1: ml_customer_features errors on all three tries."""
    result = rig.run(probe="break_features")
    assert result.state == "failed", result.output[-4000:]
    root = wait_for(lambda: [m for m in rig.top_level("#data-oncall") if "ml_customer_features" in m.text], 60, "the alert")
    wait_for(lambda: rig.emails("ml_customer_features"), 30, "the email")
    wait_for(lambda: _settled(rig), 30, "the outbox to drain")
    return {"result": result, "run_id": run_id_of(result), "root": root[0]}


@pytest.fixture(scope="module")
def folded(rig, failed):
    """Run 2: a targeted rebuild of ml_customer_segments, which now fails too, while the features incident is open."""
    before = len(rig.slack.messages)
    result = rig.run(probe="break_segments", conf={"select": "ml_customer_segments"})
    assert result.state == "failed", result.output[-4000:]
    wait_for(lambda: rig.replies_to(failed["root"]), 60, "the follow-up in the incident's thread")
    wait_for(lambda: _settled(rig), 30, "the outbox to drain")
    return {"result": result, "new_messages": rig.slack.messages[before:]}


@pytest.fixture(scope="module")
def recovered(rig, failed, folded):
    """Run 3: the fix; a warn-severity test warns along the way."""
    result = rig.run(probe="warn_test")
    assert result.succeeded, result.output[-4000:]
    wait_for(lambda: [m for m in rig.replies_to(failed["root"]) if "RESOLVED" in m.text], 60, "the recovery")
    wait_for(lambda: _settled(rig), 30, "the outbox to drain")
    return {"result": result, "run_id": run_id_of(result)}


def test_failed_model_alerts_once_after_the_last_retry_in_slack_and_email(rig, failed):
    run_id = failed["run_id"]
    ti = task_instance(DAG_ID, run_id, FEATURES_TASK)
    assert ti["state"] == "failed" and ti["try_number"] == 3, ti  # retries=2: three tries, one alert

    alerts = [m for m in rig.top_level() if "ml_customer_features" in m.text]
    assert len(alerts) == 1, [m.text[:120] for m in rig.slack.messages]
    assert len(rig.emails("ml_customer_features")) == 1
    assert rig.top_level("#data-alerts") == []  # high goes to on-call only

    text = text_of(failed["root"])
    log_url = f"http://airflow.test:8080/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/tasks/{FEATURES_TASK}?try_number=3"
    for expected in (
        "HIGH", "ml_customer_features failed", DAG_ID, FEATURES_TASK, run_id, FEATURES, "3 of 3", "data-science",
        "no_such_column_features", log_url, "https://runbooks.vyaparbazaar.example/alerting.md#failed-run",
    ):  # fmt: skip
        assert expected in text, f"{expected!r} missing from:\n{text}"
    email = rig.emails("ml_customer_features")[0]
    plain, _ = rig.smtp.parts(email)
    assert "[HIGH]" in email["Subject"] and "no_such_column_features" in plain and log_url in plain

    # The DAG-level alerts (the DAG's failure callback and the listener backstop) folded into the model's
    # incident rather than alerting again.
    store = rig.store
    dag_alerts = [a for a in store.list_alerts() if a["dedup_key"] == f"failed_run:dag:{DAG_ID}"]
    assert dag_alerts and {a["status"] for a in dag_alerts} == {"folded"}, dag_alerts
    latency = float(failed["root"].ts) - ti["end_date"]
    print(f"\nfailure -> Slack latency: {latency:.1f} s after the last try ended")
    assert latency < 30


def test_downstream_failure_folds_into_the_open_upstream_incident(rig, failed, folded):
    assert task_instance(DAG_ID, run_id_of(folded["result"]), SEGMENTS_TASK)["state"] == "failed"
    # No new alert: one threaded follow-up under the root cause, naming the affected model; no new email.
    assert [m.thread_ts for m in folded["new_messages"]] == [failed["root"].ts], [m.text for m in folded["new_messages"]]
    update = text_of(folded["new_messages"][0])
    assert SEGMENTS in update and "Also affected" in update and "ml_customer_features failed" in update
    assert len(rig.emails("ml_customer_features")) == 1
    incident = rig.store.incident(KEY)
    assert incident["status"] == "open" and SEGMENTS in incident["affected"]
    segments_alerts = [a for a in rig.store.list_alerts() if a["dedup_key"] == f"failed_run:{SEGMENTS}"]
    assert [a["status"] for a in segments_alerts] == ["folded"]


def test_fixed_model_recovers_in_the_same_slack_thread(rig, failed, recovered):
    replies = [m for m in rig.replies_to(failed["root"]) if "RESOLVED" in m.text]
    assert len(replies) == 1 and replies[0].channel == failed["root"].channel
    assert "ml_customer_features built successfully" in replies[0].text
    assert len(rig.emails("RESOLVED")) == 1  # a recovery goes where the alert went
    assert rig.store.incident(KEY)["status"] == "resolved"
    assert rig.store.last_success(FEATURES) is not None


def test_warn_severity_test_alerts_low_and_the_task_succeeds(rig, recovered):
    ti = task_instance(DAG_ID, recovered["run_id"], FEATURES_TASK)
    assert ti["state"] == "success" and ti["try_number"] == 1
    warnings = wait_for(lambda: [m for m in rig.top_level("#data-alerts") if "dbt test warning" in m.text], 30, "warning")
    assert len(warnings) == 1
    text = text_of(warnings[0])
    assert "LOW" in text and "zz_probe_features_warn" in text and "3 row(s)" in text and WARN_TEST in text
    assert not rig.emails("warning")
    results = {r["status"] for r in rig.store.node_results_for(WARN_TEST)}
    assert "warn" in results
