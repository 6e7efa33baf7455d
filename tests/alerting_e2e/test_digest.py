"""The daily digest DAG posts the deployment-health figures of the runs it finds to Slack (a notice: no email)."""

from __future__ import annotations

from tests.airflow_runs import dags_test
from tests.alerting_e2e.conftest import text_of, wait_for


def test_digest_reports_runs_success_rate_tests_and_freshness(rig_factory):
    rig = rig_factory("digest")
    run = rig.run()
    assert run.succeeded, run.output[-4000:]
    digest = dags_test("vyapar_alert_digest", env=rig.env())
    assert digest.succeeded, digest.output[-4000:]
    message = wait_for(lambda: [m for m in rig.top_level() if "Daily pipeline digest" in text_of(m)], what="the digest")
    text = text_of(message[0])
    assert "1 runs, success 100.0%" in text
    assert "ml_features 1/1" in text  # successful runs per DAG
    assert "Test pass rate" in text and "100.0%" in text
    assert "Freshness" in text and "sources:" in text
    assert rig.emails() == []  # low severity routes to Slack only
    assert rig.store.list_alerts("notice")  # stored as a notice, no incident opened
