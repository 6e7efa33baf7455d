"""The platform's metrics reach a real Prometheus: an Airflow API server serves /vyapar-metrics/metrics (the metrics
plugin), a Prometheus scrapes it with the bearer token, and a freshness figure comes back through its query API.
Without the token (another scrape job, plain requests) the endpoint answers 403."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import requests
import sqlalchemy as sa
import yaml

from include.vyapar.alerting.config import load_alerting_config
from include.vyapar.alerting.store import PENDING, AlertStore
from tests.bin_start import free_port
from tests.conftest import ARTIFACTS, REPO_ROOT
from tests.ui.conftest import wait_for

TOKEN = "metrics-token-for-the-test-0123456789"
PROMETHEUS = shutil.which("prometheus")
MODEL = "model.vyaparbazaar.mart_daily_sales"
ORDERS_AGE = timedelta(minutes=30)  # the orders table landed this long before the test starts


def _start(cmd: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def api_server(tmp_path_factory, airflow_db):  # noqa: F811
    """A real `airflow api-server` (plugins loaded) over a migrated metadata database, a landing ledger and an alert
    store with a pending and a dead-lettered delivery."""
    root = tmp_path_factory.mktemp("metrics")
    now = datetime.now(UTC).replace(tzinfo=None)
    (root / "landing" / "_batches").mkdir(parents=True)
    con = duckdb.connect()
    con.execute("create table ledger as select * from (values ('orders', ?::timestamp), ('customers', ?::timestamp)) "
                "t(table_name, _loaded_at)", [now - ORDERS_AGE, now - timedelta(hours=3)])  # fmt: skip
    con.execute(f"copy ledger to '{root / 'landing' / '_batches' / 'b1.parquet'}' (format parquet)")
    store_url = f"sqlite:///{root / 'alerts.sqlite'}"
    store = AlertStore(store_url, config=load_alerting_config())
    with store.engine.begin() as conn:
        for status, age in ((PENDING, 600), ("dead", 7200)):
            conn.execute(sa.insert(store.deliveries).values(
                alert_id=1, channel="email", destination="x@example.com", status=status, attempts=1,
                next_attempt_at=time.time(), created_at=time.time() - age,
            ))  # fmt: skip
        for n, seconds in enumerate((10.0, 12.0, 14.0)):  # a baseline: the median of the recent successful builds
            conn.execute(sa.insert(store.durations).values(
                node_id=MODEL, run_id=f"r{n}", seconds=seconds, recorded_at=time.time() - 3600 + n))  # fmt: skip
        conn.execute(sa.insert(store.node_results).values(
            node_id=MODEL, resource_type="model", status="success", seconds=15.0, dag_id="vyapar_marts",
            run_id="r3", task_id="dbt", finished_at=time.time() - 60,
        ))  # fmt: skip
    store.engine.dispose()
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.execute(sa.delete(DagRun.__table__).where(DagRun.run_id.like("metrics\\_test%", escape="\\")))
        session.execute(sa.insert(DagRun.__table__), [
            {"dag_id": "vyapar_staging", "run_id": f"metrics_test_{n}", "run_type": "manual", "state": state,
             "run_after": start, "queued_at": start, "start_date": start, "end_date": start + timedelta(minutes=1)}
            for n, state in enumerate(("success", "failed"))
            # after any run another test of this worker's session made: the later (failed) one is the DAG's last
            for start in [datetime.now(UTC) + timedelta(days=1, hours=n)]
        ])  # fmt: skip
    port = free_port()
    env = {**os.environ, "VYAPAR_LANDING_DIR": str(root / "landing"), "VYAPAR_ALERT_STORE_URL": store_url,
           "VYAPAR_METRICS_TOKEN": TOKEN, "AIRFLOW__API__PORT": str(port)}  # fmt: skip
    log = root / "api-server.log"
    proc = _start([str(Path(os.environ.get("VENV", REPO_ROOT / ".venv")) / "bin" / "airflow"), "api-server", "--port",
                   str(port), "--workers", "1"], log, env)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    info = {"base": base, "root": root, "log": log, "proc": proc, "port": port}
    try:
        wait_for(lambda: requests.get(f"{base}/vyapar-metrics/metrics", timeout=5).status_code == 403, 600,
                 "the metrics endpoint", info)  # fmt: skip
        yield info
    finally:
        _stop(proc)


def _staging_runs_by_state() -> dict[str, int]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.execute(
            sa.select(DagRun.state, sa.func.count()).where(DagRun.dag_id == "vyapar_staging").group_by(DagRun.state)
        ).all()
    counts = {str(state): n for state, n in rows}
    assert counts.get("success", 0) >= 1 and counts.get("failed", 0) >= 1, counts
    return counts


def test_metrics_need_the_bearer_token(api_server):
    url = f"{api_server['base']}/vyapar-metrics/metrics"
    assert requests.get(url, timeout=10).status_code == 403
    assert requests.get(url, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 403
    answer = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = answer.text
    assert 'vyapar_freshness_age_seconds{kind="source",name="orders",node_id="source.vyaparbazaar.vyaparbazaar_raw.orders"}' in text
    assert "vyapar_alert_outbox_pending 1.0" in text and "vyapar_alert_outbox_dead_lettered 1.0" in text
    oldest = next(line for line in text.splitlines() if line.startswith("vyapar_alert_outbox_oldest_pending_age_seconds "))
    assert 600 <= float(oldest.split()[1]) < 1200
    for family in ("vyapar_resource_used_percent", "vyapar_resource_threshold_percent", "vyapar_model_baseline_seconds",
                   "vyapar_model_last_duration_seconds", "vyapar_dag_runs_total", "vyapar_dag_last_run_success"):  # fmt: skip
        assert f"# TYPE {family.removesuffix('_total')}" in text, family
    assert 'vyapar_resource_used_percent{host=' in text or 'vyapar_resource_used_percent{metric="memory"' in text
    assert 'vyapar_metrics_section_up{section="runs"} 1.0' in text, text[-3000:]
    for state, count in _staging_runs_by_state().items():  # the test's two runs and any other test's of this session
        assert f'vyapar_dag_runs_total{{dag_id="vyapar_staging",state="{state}"}} {float(count)}' in text, state
    assert 'vyapar_dag_last_run_success{dag_id="vyapar_staging"} 0.0' in text  # the later run failed
    assert f'vyapar_model_last_duration_seconds{{model="mart_daily_sales",node_id="{MODEL}",status="success"}} 15.0' in text
    assert f'vyapar_model_baseline_seconds{{model="mart_daily_sales",node_id="{MODEL}"}} 12.0' in text


@pytest.mark.skipif(PROMETHEUS is None, reason="Debian's prometheus package is not installed (.ci/run installs it)")
def test_prometheus_scrapes_the_platform_and_answers_a_freshness_query(api_server, tmp_path):
    target = f"127.0.0.1:{api_server['port']}"
    (tmp_path / "token").write_text(TOKEN)
    scrape = {"metrics_path": "/vyapar-metrics/metrics", "static_configs": [{"targets": [target]}]}
    config = {
        "global": {"scrape_interval": "2s", "scrape_timeout": "2s"},
        "scrape_configs": [
            {"job_name": "vyapar", **scrape, "authorization": {"type": "Bearer", "credentials_file": str(tmp_path / "token")}},
            {"job_name": "vyapar-without-token", **scrape},
        ],
    }  # fmt: skip
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = _start([PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                   f"--web.listen-address=127.0.0.1:{port}"], tmp_path / "prometheus.log")  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def query(expr: str) -> list[dict]:
        answer = requests.get(f"{base}/api/v1/query", params={"query": expr}, timeout=10)
        answer.raise_for_status()
        return answer.json()["data"]["result"]

    try:
        wait_for(lambda: requests.get(f"{base}/-/ready", timeout=5).ok, 120, "Prometheus ready")
        expr = 'vyapar_freshness_age_seconds{job="vyapar",kind="source",name="orders"}'
        result = wait_for(lambda: query(expr), 180, "a scraped freshness figure", every=2)
        answer = requests.get(f"{base}/api/v1/query", params={"query": expr}, timeout=10).json()
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "prometheus_freshness_query.json").write_text(json.dumps({"query": expr, "answer": answer}, indent=2))
        print(f"\nGET /api/v1/query?query={expr}\n{json.dumps(answer)}")
        [series] = result
        age = float(series["value"][1])
        # Landed 30 min before the fixture started; scraped since: the age is 30 min plus the test's run so far.
        assert ORDERS_AGE.total_seconds() <= age <= ORDERS_AGE.total_seconds() + 900
        assert series["metric"]["node_id"] == "source.vyaparbazaar.vyaparbazaar_raw.orders"
        [stale] = query('vyapar_freshness_stale{job="vyapar",name="customers"}')
        assert stale["value"][1] == "1"  # landed 3 h ago: over the 2 h limit
        [up] = wait_for(lambda: query('up{job="vyapar-without-token"}'), 60, "the tokenless job's first scrape")
        assert up["value"][1] == "0"  # its scrapes are refused (403)
        [up] = query('up{job="vyapar"}')
        assert up["value"][1] == "1"
    finally:
        _stop(proc)


@pytest.mark.skipif(PROMETHEUS is None, reason="Debian's prometheus package is not installed (.ci/run installs it)")
def test_the_compose_scrape_config_is_valid_and_scrapes_the_api_server_with_the_token(tmp_path):
    config = yaml.safe_load((REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/vyapar-metrics/metrics"
    assert job["static_configs"] == [{"targets": ["airflow-apiserver:8080"]}]
    assert job["authorization"]["type"] == "Bearer"
    (tmp_path / "token").write_text(TOKEN)  # the compose service writes it from VYAPAR_METRICS_TOKEN
    job["authorization"]["credentials_file"] = str(tmp_path / "token")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.run([str(Path(PROMETHEUS).with_name("promtool")), "check", "config", str(tmp_path / "prometheus.yml")],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
