"""The alerting file is validated strictly: a mistake names the file and the key path; routing follows it."""

from __future__ import annotations

import pytest
import yaml

from include.vyapar.alerting import config as alerting_config
from include.vyapar.alerting.alert import Alert
from include.vyapar.alerting.config import AlertingConfigError, load_alerting_config
from include.vyapar.alerting.router import route_for


def _write(tmp_path, mutate) -> str:
    raw = yaml.safe_load(alerting_config.DEFAULT_CONFIG_PATH.read_text())
    mutate(raw)
    path = tmp_path / "alerting.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c["routes"]["high"].__setitem__(1, "pager"), "alerting.yaml: routes.high[1]: unknown channel 'pager' (allowed: slack, email)"),
        (lambda c: c["alerts"]["slow"].update(threshold_ratoi=2), "alerting.yaml: alerts.slow.threshold_ratoi: unknown key"),
        (lambda c: c["alerts"]["stale_data"].update(severity="urgent"), "alerting.yaml: alerts.stale_data.severity: unknown severity 'urgent'"),
        (lambda c: c["alerts"]["slow"].pop("min_samples"), "alerting.yaml: alerts.slow.min_samples: required key is missing"),
        (lambda c: c["delivery"].update(max_attempts=0), "alerting.yaml: delivery.max_attempts: Input should be greater than or equal to 1"),
        (lambda c: c["email"]["recipients"].pop("critical"), "alerting.yaml: email.recipients: no recipients for severity 'critical'"),
        (lambda c: c.update(silences=[{"dag_id": "vyapar_marts"}]), "alerting.yaml: silences[0].reason: required key is missing"),
        (lambda c: c.update(maintenance_windows=[{"start": "2025-01-01T02:00:00", "end": "2025-01-01T03:00:00", "reason": "x"}]), "alerting.yaml: maintenance_windows[0]: 2025-01-01T02:00:00 has no timezone"),
        (lambda c: c.update(pager={"id": 1}), "alerting.yaml: pager: unknown key"),
    ],
    ids=["channel", "typo", "severity", "missing", "range", "recipients", "silence", "naive-time", "top-level"],
)  # fmt: skip
def test_bad_config_names_the_key(tmp_path, mutate, expected):
    with pytest.raises(AlertingConfigError) as caught:
        load_alerting_config(_write(tmp_path, mutate))
    assert str(caught.value).startswith(expected), str(caught.value)


def test_unparsable_config_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "alerting.yaml"
    path.write_text("routes: [unclosed\n")
    monkeypatch.setenv("VYAPAR_ALERTING_CONFIG", str(path))
    with pytest.raises(AlertingConfigError, match=r"^alerting.yaml: not valid YAML"):
        load_alerting_config()


def test_route_for_severity():
    config = load_alerting_config()
    assert config.severities == ["low", "medium", "high", "critical"]
    assert route_for("low", config) == ["slack"]
    assert route_for("medium", config) == ["slack"]
    assert route_for("high", config) == ["slack", "email"]
    assert route_for("critical", config) == ["slack", "email"]
    assert [config.severity_of(kind) for kind in alerting_config.ALERT_KINDS] == [
        "high", "medium", "low", "high", "critical", "critical", "low",  # ... alerting_degraded, digest
    ]  # fmt: skip
    assert (config.alerts.slow.threshold_ratio, config.alerts.stale_data.max_age_minutes) == (1.5, 120)
    with pytest.raises(ValueError, match="unknown severity 'urgent'"):
        route_for("urgent", config)


def test_links_come_from_the_environment_when_set(monkeypatch):
    monkeypatch.setenv("VYAPAR_AIRFLOW_BASE_URL", "https://airflow.vyaparbazaar.example")
    config = load_alerting_config()
    assert config.links.airflow_base_url == "https://airflow.vyaparbazaar.example"
    assert config.runbook_url("stale_data") == "https://airflow.vyaparbazaar.example/vyapar-health/runbooks#stale-data"


def _links_of_every_kind(harness) -> dict[str, str]:
    """The links the alerting code builds: task log and DAG run (reconciler, DAG failure callback), runbook, health."""
    from include.vyapar.alerting.producers import callbacks, reconciler, weekly

    alerting_config.get_config.cache_clear()
    task_alert, _ = reconciler.task_failure_alert("vyapar_marts", "manual__1", "marts.x", 1, None, None, "killed")
    run_alert, _ = reconciler.dag_run_failure_alert("vyapar_marts", "manual__1", ["marts.x"])
    callbacks.on_dag_failure({"dag": type("Dag", (), {"dag_id": "vyapar_marts"})(), "run_id": "manual__2"})
    stored = [a for a in harness.store.list_alerts() if a["dedup_key"] == "failed_run:dag:vyapar_marts"][-1]
    return {
        "task log": task_alert.links["Task log"],
        "DAG run (reconciler)": run_alert.links["DAG run"],
        "DAG run (callback)": Alert.from_json(stored["payload"]).links["DAG run"],
        "runbook": alerting_config.get_config().runbook_url("failed_run"),
        "health": weekly.health_url(),
    }


def test_every_link_in_an_alert_starts_at_the_one_platform_base_url(harness, monkeypatch):
    """Airflow's [api] base_url first (a sub-path kept), else VYAPAR_AIRFLOW_BASE_URL, else alerting.yaml's value:
    the same for the task log, the DAG run, the runbook and the health view."""
    harness.reconfigure(links={"airflow_base_url": "http://from-the-file:8080"})  # runbooks: the platform's own page
    monkeypatch.setenv("VYAPAR_AIRFLOW_BASE_URL", "http://from-vyapar-env:8080")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://data.vyaparbazaar.example/airflow/")
    for what, link in _links_of_every_kind(harness).items():
        assert link.startswith("https://data.vyaparbazaar.example/airflow/"), (what, link)
        assert "//dags" not in link and "//vyapar-health" not in link, (what, link)

    monkeypatch.delenv("AIRFLOW__API__BASE_URL")
    for what, link in _links_of_every_kind(harness).items():
        assert link.startswith("http://from-vyapar-env:8080/"), (what, link)


def test_runbook_links_open_for_the_recipient(monkeypatch):
    """The platform's own runbooks page by default, under Airflow's [api] base_url (sub-path kept) when set;
    VYAPAR_RUNBOOK_BASE_URL overrides; a path (or file://) that opens only on the sender's machine is refused."""
    monkeypatch.delenv("VYAPAR_RUNBOOK_BASE_URL", raising=False)
    monkeypatch.setenv("VYAPAR_AIRFLOW_BASE_URL", "http://localhost:8080")
    assert load_alerting_config().runbook_url("failed_run") == "http://localhost:8080/vyapar-health/runbooks#failed-run"
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://data.vyaparbazaar.example/airflow/")
    assert (
        load_alerting_config().runbook_url("alerting_degraded")
        == "https://data.vyaparbazaar.example/airflow/vyapar-health/runbooks#alerting-degraded"
    )
    monkeypatch.setenv("VYAPAR_RUNBOOK_BASE_URL", "https://wiki.vyaparbazaar.example/runbooks")
    assert load_alerting_config().runbook_url("slow") == "https://wiki.vyaparbazaar.example/runbooks#slow"
    monkeypatch.setenv("VYAPAR_RUNBOOK_BASE_URL", "docs/runbooks.md")
    with pytest.raises(AlertingConfigError, match="links.runbook_base_url: must be an http"):
        load_alerting_config()


def test_routes_narrow_to_the_deployments_channels(monkeypatch):
    """A stack without Slack (compose renders VYAPAR_ALERT_CHANNELS=email) reroutes Slack-only severities to
    email instead of dead-lettering them; a channel listed twice counts once; an unknown one is refused."""
    monkeypatch.setenv("VYAPAR_ALERT_CHANNELS", "email")
    config = load_alerting_config()
    assert [route_for(s, config) for s in config.severities] == [["email"]] * 4
    monkeypatch.setenv("VYAPAR_ALERT_CHANNELS", "slack,slack,email")
    config = load_alerting_config()
    assert config.channels == ["slack", "email"]
    assert route_for("low", config) == ["slack"]
    assert route_for("high", config) == ["slack", "email"]
    monkeypatch.setenv("VYAPAR_ALERT_CHANNELS", "slack,pager")
    with pytest.raises(AlertingConfigError, match=r"channels\[1\]: unknown channel 'pager'"):
        load_alerting_config()
