"""Alerts that must not wait for the task: slow (while the model still runs) and resources; and a failing test."""

from __future__ import annotations

import threading
import time

import pytest

from tests.airflow_runs import Gate
from tests.alerting_e2e.conftest import (
    DAG_ID,
    FAIL_TEST,
    FEATURES_TASK,
    SEGMENTS,
    SEGMENTS_TASK,
    run_id_of,
    task_instance,
    text_of,
    wait_for,
)

pytestmark = pytest.mark.slow
# How long the slow model's task waits for its alert at most, and how long it goes on once the alert is in Slack.
SLOW_ALERT_TIMEOUT = 180
GATE_HOLD_SECONDS = 8


def test_failing_dbt_test_alerts_medium_in_slack_only(rig_factory):
    rig = rig_factory("data-quality")
    result = rig.run(probe="fail_test")
    assert result.state == "failed", result.output[-4000:]
    ti = task_instance(DAG_ID, run_id_of(result), FEATURES_TASK)
    assert ti["state"] == "failed" and ti["try_number"] == 3
    alerts = wait_for(lambda: rig.top_level("#data-alerts"), 60, "the data-quality alert")
    wait_for(lambda: not rig.store.list_deliveries("pending") and not rig.store.list_deliveries("sending"), 30, "drain")
    assert len(rig.top_level()) == 1, [m.text[:120] for m in rig.slack.messages]
    text = text_of(alerts[0])
    for expected in ("MEDIUM", "zz_probe_features_fail", "3 failing rows", "data-science", f"data_quality:{FAIL_TEST}"):
        assert expected in text, f"{expected!r} missing from:\n{text}"
    assert rig.smtp.messages == []  # medium routes to Slack only


@pytest.fixture(scope="module")
def slow_run(rig_factory, tmp_path_factory):
    """ml_customer_segments usually takes 1 s (three seeded runs); in this run it waits at a gate (no CPU) until its
    "still running" alert has reached Slack, and GATE_HOLD_SECONDS more: the alert must come while the model runs.

    Memory is also held to a 1% threshold, so the resource sampler must raise a critical alert.
    """
    rig = rig_factory("running", resources={"threshold_percent": 1, "metrics": ["memory"], "sample_seconds": 1})
    store = rig.store
    for n in range(3):
        store.record_duration(SEGMENTS, 1.0, f"seeded-{n}")
    gate, finished = Gate(tmp_path_factory.mktemp("gate") / "segments"), threading.Event()

    def open_gate_after_the_alert() -> None:
        deadline = time.monotonic() + SLOW_ALERT_TIMEOUT
        while time.monotonic() < deadline and not finished.is_set() and not _still_running(rig):
            time.sleep(0.2)
        time.sleep(GATE_HOLD_SECONDS)  # also when no alert came: the test below says it is missing
        gate.open(finished)

    opener = threading.Thread(target=open_gate_after_the_alert, daemon=True)
    opener.start()
    try:
        result = rig.run(probe="slow_segments", VYAPAR_PROBE_GATE=str(gate.path))
    finally:
        finished.set()
        opener.join()
    assert result.succeeded, result.output[-4000:]
    wait_for(lambda: not rig.store.list_deliveries("pending") and not rig.store.list_deliveries("sending"), 30, "drain")
    return rig, result


def _still_running(rig) -> list:
    return [m for m in rig.top_level("#data-alerts") if "still running" in m.text]


def test_slow_model_alerts_while_it_is_still_running(slow_run):
    rig, result = slow_run
    ti = task_instance(DAG_ID, run_id_of(result), SEGMENTS_TASK)
    slow = _still_running(rig)
    assert len(slow) == 1, [m.text[:120] for m in rig.slack.messages]
    text = text_of(slow[0])
    for expected in ("LOW", "ml_customer_segments", "usually 1.0 s", "Baseline", "Threshold", "Elapsed", f"slow:{SEGMENTS}"):
        assert expected in text, f"{expected!r} missing from:\n{text}"
    lead = ti["end_date"] - float(slow[0].ts)
    print(f"\nslow alert reached Slack {lead:.1f} s before the model's task ended "
          f"(task ran {ti['end_date'] - ti['start_date']:.1f} s)")  # fmt: skip
    assert float(slow[0].ts) < ti["end_date"] and lead > 5
    assert not rig.smtp.messages or all("slow" not in str(m["Subject"]).lower() for m in rig.smtp.messages)


def test_resource_pressure_alerts_critical_in_slack_and_email(slow_run):
    rig, _ = slow_run
    critical = [m for m in rig.top_level("#data-oncall") if "memory at" in m.text]
    assert len(critical) == 1, [m.text[:120] for m in rig.slack.messages]  # once per metric, across both tasks
    assert "CRITICAL" in text_of(critical[0]) and "threshold 1%" in critical[0].text
    emails = rig.emails("memory at")
    assert len(emails) == 1
    assert {r for _, rs in rig.smtp.envelopes for r in rs} >= {"data-leads@vyaparbazaar.example"}


def test_slow_model_recovers_when_it_next_runs_within_its_threshold(slow_run):
    rig, _ = slow_run
    (slow,) = _still_running(rig)
    result = rig.run()
    assert result.succeeded, result.output[-4000:]
    replies = wait_for(lambda: [m for m in rig.replies_to(slow) if "RESOLVED" in m.text], 60, "the slow recovery")
    assert "back to normal speed" in replies[0].text
    assert rig.store.incident(f"slow:{SEGMENTS}")["status"] == "resolved"
