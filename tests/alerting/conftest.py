"""Alerting fixtures: a fake Slack and a real local SMTP server, Airflow connections pointing at them, a fresh store."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from include.vyapar.alerting import config as alerting_config
from include.vyapar.alerting import store as alerting_store
from include.vyapar.alerting.alert import Alert
from include.vyapar.alerting.delivery import FlushReport, flush
from include.vyapar.alerting.store import AlertStore
from tests.fakes.slack_server import FakeSlack
from tests.fakes.smtp_server import FakeSmtp

# Fast delivery policy for tests; everything else comes from the real alerting.yaml.
TEST_DELIVERY = {
    "max_attempts": 4,
    "backoff_seconds": 0.2,
    "max_backoff_seconds": 1,
    "timeout_seconds": 1,
    "lease_seconds": 3,
}


def write_config(directory: Path, **overrides: Any) -> Path:
    raw = yaml.safe_load(alerting_config.DEFAULT_CONFIG_PATH.read_text())
    raw["delivery"] = dict(TEST_DELIVERY)
    raw["links"] = {
        "airflow_base_url": "http://airflow.test:8080",
        "runbook_base_url": "https://runbooks.vyaparbazaar.example/alerting.md",
    }
    for key, value in overrides.items():
        raw[key] = value
    path = directory / "alerting.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@dataclass
class Harness:
    store: AlertStore
    slack: FakeSlack
    smtp: FakeSmtp
    directory: Path

    def flush(self, **kwargs: Any) -> FlushReport:
        return flush(store=self.store, **kwargs)

    def drain(self, rounds: int = 40, pause: float = 0.25) -> list[FlushReport]:
        """Flush until nothing is pending or in flight (sleeping between rounds so backoffs come due)."""
        reports = []
        for _ in range(rounds):
            reports.append(self.flush())
            if not self.store.list_deliveries("pending") and not self.store.list_deliveries("sending"):
                return reports
            time.sleep(pause)
        raise AssertionError(f"outbox not drained: {self.store.list_deliveries('pending')}")

    def reconfigure(self, **overrides: Any) -> None:
        path = write_config(self.directory, **overrides)
        self.store._config = alerting_config.load_alerting_config(path)


@pytest.fixture
def fake_slack():
    slack = FakeSlack().start()
    yield slack
    slack.stop()


@pytest.fixture
def fake_smtp():
    smtp = FakeSmtp().start()
    yield smtp
    smtp.stop()


@pytest.fixture
def harness(tmp_path, monkeypatch, fake_slack, fake_smtp) -> Harness:
    """Connections (env AIRFLOW_CONN_*) at the fakes, a test alerting.yaml, a fresh SQLite store in tmp_path."""
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", fake_slack.connection_json())
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_ALERTS", fake_smtp.connection_json())
    monkeypatch.setenv("VYAPAR_ALERTING_CONFIG", str(write_config(tmp_path)))
    monkeypatch.setenv("VYAPAR_ALERT_STORE_URL", f"sqlite:///{tmp_path / 'alerts.sqlite'}")
    monkeypatch.setenv("VYAPAR_ALERTING_KICK", "0")
    alerting_config.get_config.cache_clear()
    alerting_store.get_store.cache_clear()
    yield Harness(store=alerting_store.get_store(), slack=fake_slack, smtp=fake_smtp, directory=tmp_path)
    alerting_store.get_store().engine.dispose()
    alerting_config.get_config.cache_clear()
    alerting_store.get_store.cache_clear()


def failed_run(**overrides: Any) -> Alert:
    """A realistic failed dbt model alert."""
    fields: dict[str, Any] = {
        "kind": "failed_run",
        "subject": "vyapar_marts: dbt model fct_daily_gmv failed",
        "summary": "The marts run stopped at fct_daily_gmv; downstream marts were not refreshed.",
        "facts": {"Rows expected": "≈ 48,000", "Actual vs threshold": "0 rows vs ≥ 1 row"},
        "links": {"Task log": "http://airflow.test:8080/dags/vyapar_marts/runs/scheduled__2025-06-01T00%3A00%3A00%2B00%3A00/tasks/marts.fct_daily_gmv_run?try_number=2"},
        "error": "Runtime Error in model fct_daily_gmv (models/marts/fct_daily_gmv.sql)\n  Binder Error: column \"gmv_inr\" not found\nline 3\nline 4",
        "dag_id": "vyapar_marts",
        "task_id": "marts.fct_daily_gmv_run",
        "run_id": "scheduled__2025-06-01T00:00:00+00:00",
        "node_id": "model.vyaparbazaar.fct_daily_gmv",
        "owner": "analytics-engineering",
    }  # fmt: skip
    fields.update(overrides)
    return Alert(**fields)
