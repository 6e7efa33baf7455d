"""End-to-end alerting: real `airflow dags test` runs of factory DAGs on real dbt/DuckDB, alerts delivered to a fake
Slack and a real local SMTP server by the raising process's inline attempt (no scheduler, so no sweeper, here).

The DAGs run against a copy of the dbt project whose ML models and two singular tests misbehave on demand
(`VYAPAR_PROBE`: break_features, break_segments, slow_segments, fail_test, warn_test), in their own DuckDB file.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from include.vyapar import settings
from include.vyapar.alerting.config import load_alerting_config
from include.vyapar.alerting.store import AlertStore
from tests.airflow_runs import DagTestResult, dags_test
from tests.alerting.conftest import write_config
from tests.fakes.slack_server import FakeSlack, Message
from tests.fakes.smtp_server import FakeSmtp

DAG_ID = "vyapar_ml_features"
FEATURES = "model.vyaparbazaar.ml_customer_features"
SEGMENTS = "model.vyaparbazaar.ml_customer_segments"
FEATURES_TASK = "dbt.ml_customer_features_model_build"
SEGMENTS_TASK = "dbt.ml_customer_segments_model_build"
FAIL_TEST = "test.vyaparbazaar.zz_probe_features_fail"
WARN_TEST = "test.vyaparbazaar.zz_probe_features_warn"

PROBE_MACRO = """
{% macro probe_hook(name) %}
  {#- test-only: VYAPAR_PROBE=break_<name> makes the model fail; slow_<name> makes it wait first, for a line on the
      named pipe VYAPAR_PROBE_GATE (the test opens the gate: a slow model that costs no CPU) -#}
  {%- set probe = env_var('VYAPAR_PROBE', '') -%}
  {%- if ('break_' ~ name) in probe -%} select no_such_column_{{ name }}
  {%- elif ('slow_' ~ name) in probe -%}
  select count(*) from read_csv('{{ env_var("VYAPAR_PROBE_GATE", "") }}', header=false, auto_detect=false, columns={'line': 'varchar'})
  {%- else -%} select 1
  {%- endif -%}
{% endmacro %}
"""
PROBE_TEST = """
{{{{ config(severity='{severity}') }}}}
-- test-only: returns rows while VYAPAR_PROBE contains {flag}
select customer_id from {{{{ ref('ml_customer_features') }}}}
where {{{{ 'true' if '{flag}' in env_var('VYAPAR_PROBE', '') else 'false' }}}}
limit 3
"""
# Quick retries, but a lease that outlives a cold flusher's first send (importing the Slack SDK, reading the
# connection: seconds on a busy 2-core box); a shorter one lets a second flusher re-send the same message.
E2E_DELIVERY = {"max_attempts": 4, "backoff_seconds": 0.5, "max_backoff_seconds": 2, "timeout_seconds": 5, "lease_seconds": 60}
# The startup allowance covers a dbt task's process start and parse before its first node: on a loaded 2-core box
# (the whole suite running) a normal run of a 1 s model took over 6 s of task time and re-raised "slow" instead of
# recovering; 12 s keeps the recovery run under its threshold there, and the probe's slow run (~20 s of CPU, 45-72 s
# of task time) still alerts long before it ends.
E2E_SLOW = {
    "severity": "low", "threshold_ratio": 1.5, "baseline_samples": 10, "min_samples": 3,
    "min_excess_seconds": 1, "startup_allowance_seconds": 12,
}  # fmt: skip


@pytest.fixture(scope="session")
def probe_project(tmp_path_factory, raw_landing) -> dict[str, str]:  # noqa: F811
    """The dbt project copy (probes in the ML models and two tests), its manifest, short retries, its own warehouse."""
    root = tmp_path_factory.mktemp("alerting-e2e")
    project = root / "dbt"
    shutil.copytree(settings.DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    (project / "macros" / "zz_probe_hook.sql").write_text(PROBE_MACRO)
    for name in ("features", "segments"):
        model = project / "models" / "ml" / f"ml_customer_{name}.sql"
        model.write_text(f"{{{{ config(pre_hook=\"{{{{ probe_hook('{name}') }}}}\") }}}}\n" + model.read_text())
    (project / "tests" / "zz_probe_features_fail.sql").write_text(PROBE_TEST.format(severity="error", flag="fail_test"))
    (project / "tests" / "zz_probe_features_warn.sql").write_text(PROBE_TEST.format(severity="warn", flag="warn_test"))
    schedules = yaml.safe_load((settings.REPO_ROOT / "include/vyapar/pipeline/schedules.yaml").read_text())
    schedules["defaults"].update(retry_delay_seconds=1, max_retry_delay_seconds=2)
    (root / "schedules.yaml").write_text(yaml.safe_dump(schedules))
    warehouse = root / "warehouse" / "e2e.duckdb"
    env = {
        "VYAPAR_DBT_PROJECT_DIR": str(project),
        "VYAPAR_DBT_MANIFEST": str(project / "target" / "manifest.json"),
        "VYAPAR_SCHEDULES_FILE": str(root / "schedules.yaml"),
        "VYAPAR_DUCKDB_PATH": str(warehouse),
        "VYAPAR_WAREHOUSE_LOCK": str(warehouse.with_suffix(".lock")),
        # Its own Cosmos partial-parse cache: the probe project must not share one with the real project's DAGs.
        "AIRFLOW__COSMOS__CACHE_DIR": str(root / "cosmos_cache"),
    }
    full_env = {**os.environ, **env}
    subprocess.run([sys.executable, "-m", "include.vyapar.pipeline.manifest"], env=full_env, check=True, capture_output=True)
    # Only what the ML DAG reads, built once in one dbt process (models only: the DAG runs the tests).
    warehouse.parent.mkdir(parents=True)
    proc = subprocess.run(
        [settings.DBT_BIN, "run", "--quiet", "--select", "+ml_customer_segments", "--project-dir", str(project),
         "--profiles-dir", str(project), "--target-path", str(root / "build-target")],
        env={**full_env, "VYAPAR_LANDING_DIR": str(settings.LANDING_DIR)}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return env


@dataclass
class AlertingRig:
    """A fake Slack, a real SMTP server, a private alert store and config; runs the ML DAG against them."""

    slack: FakeSlack
    smtp: FakeSmtp
    directory: Path
    project_env: dict[str, str]
    config_path: Path
    store_url: str
    runs: list[DagTestResult] = field(default_factory=list)

    @property
    def store(self) -> AlertStore:
        return AlertStore(self.store_url, config=load_alerting_config(self.config_path))

    def env(self, probe: str = "") -> dict[str, str]:
        return {
            **self.project_env,
            "AIRFLOW_CONN_SLACK_ALERTS": self.slack.connection_json(),
            "AIRFLOW_CONN_SMTP_ALERTS": self.smtp.connection_json(),
            "VYAPAR_ALERTING_CONFIG": str(self.config_path),
            "VYAPAR_ALERT_STORE_URL": self.store_url,
            "VYAPAR_ALERTING_KICK": "1",
            "VYAPAR_PROBE": probe,
            # The listener backstop in plugins/ is loaded too: its DAG-level alert must fold into the incidents
            # the task callbacks opened, so each test still sees exactly one alert.
        }

    def run(self, probe: str = "", conf: dict | None = None, **env: str) -> DagTestResult:
        result = dags_test(DAG_ID, conf=conf, env={**self.env(probe), **env})
        self.runs.append(result)
        return result

    # -- what arrived
    def top_level(self, channel: str | None = None) -> list[Message]:
        messages = self.slack.messages_in(channel) if channel else list(self.slack.messages)
        return [m for m in messages if m.thread_ts is None]

    def replies_to(self, message: Message) -> list[Message]:
        return [m for m in self.slack.messages if m.thread_ts == message.ts]

    def emails(self, needle: str = "") -> list[Any]:
        return [m for m in self.smtp.messages if needle in str(m["Subject"])]


def wait_for(predicate: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    """Poll until `predicate()` is truthy: delivery is asynchronous (a thread of the raising process, the sweeper)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def text_of(message: Message) -> str:
    """Everything a reader sees in a Slack message: fallback text and every block's text."""
    parts = [message.text]
    for block in message.blocks:
        if isinstance(block.get("text"), dict):
            parts.append(block["text"].get("text", ""))
        parts += [f.get("text", "") for f in block.get("fields", [])]
        parts += [e.get("text", "") if isinstance(e.get("text"), str) else e.get("text", {}).get("text", "") for e in block.get("elements", [])]
        parts += [e.get("url", "") for e in block.get("elements", [])]
    return "\n".join(parts)


def run_id_of(result: DagTestResult) -> str:
    match = re.search(rf"DagRun Finished: dag_id={result.dag_id}, logical_date=[^,]*, run_id=([^,]+),", result.output)
    assert match, result.output[-3000:]
    return match.group(1)


def task_instance(dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
    """The task instance row of the metadata DB (state, try_number, start/end as epoch seconds)."""
    db = Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"
    with sqlite3.connect(db) as con:
        con.row_factory = sqlite3.Row
        row = con.execute(
            "select state, try_number, start_date, end_date from task_instance where dag_id=? and run_id=? and task_id=?",
            (dag_id, run_id, task_id),
        ).fetchone()
    assert row is not None, (dag_id, run_id, task_id)
    record = dict(row)
    for key in ("start_date", "end_date"):
        if record[key]:
            record[key] = datetime.fromisoformat(record[key]).timestamp()
    return record


@pytest.fixture(scope="module")
def rig_factory(tmp_path_factory, airflow_db, probe_project):  # noqa: F811
    """Build a rig with its own fakes, store and config (overrides merged into the test alerting.yaml)."""
    made: list[AlertingRig] = []

    def make(name: str = "rig", **overrides: Any) -> AlertingRig:
        directory = tmp_path_factory.mktemp(name)
        alerts = yaml.safe_load(Path(settings.REPO_ROOT / "include/vyapar/alerting/alerting.yaml").read_text())["alerts"]
        alerts["slow"] = dict(E2E_SLOW)
        alerts["resources"].update(overrides.pop("resources", {}))
        (directory / "no-plugins").mkdir()
        config_path = write_config(directory, alerts=alerts, delivery=dict(E2E_DELIVERY), **overrides)
        rig = AlertingRig(
            slack=FakeSlack().start(), smtp=FakeSmtp().start(), directory=directory, project_env=probe_project,
            config_path=config_path, store_url=f"sqlite:///{directory / 'alerts.sqlite'}",
        )  # fmt: skip
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.slack.stop()
        rig.smtp.stop()
