"""`bin/start` on embedded defaults: a newcomer's one command brings up Airflow standalone with our DAGs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ARTIFACTS

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"bin/start exited ({proc.returncode}) while waiting for {what}:\n{log.read_text()[-5000:]}")
        try:
            value = predicate()
            if value:
                return value
        except requests.RequestException:
            pass
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}:\n{log.read_text()[-5000:]}")


@contextlib.contextmanager
def bin_start(root: Path, artifact: str, **extra_env: str):
    """`bin/start` on a free port with its own data folder and Airflow home, DAGs paused (scheduled runs would
    compete with a test's own trigger; the newcomer's default is unpaused); stopped, and its log kept, at the end."""
    port = _free_port()
    env = {
        **os.environ,
        "VYAPAR_DATA_DIR": str(root / "data"),
        "AIRFLOW_HOME": str(root / "airflow_home"),
        "AIRFLOW_PORT": str(port),
        "VYAPAR_SCALE": "0.05",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        **extra_env,
    }
    for var in ("VYAPAR_LANDING_DIR", "VYAPAR_DUCKDB_PATH", "VYAPAR_WAREHOUSE_LOCK"):
        env.pop(var, None)
    log = root / "start.log"
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen([str(REPO_ROOT / "bin" / "start")], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    base = f"http://localhost:{port}"
    try:
        _wait_for(lambda: requests.get(f"{base}/api/v2/monitor/health", timeout=5).ok, 600, "a healthy API", proc, log)
        yield {"base": base, "root": root, "log": log, "proc": proc, "ready_seconds": time.monotonic() - started}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / artifact).write_text(log.read_text())


@pytest.fixture(scope="module")
def started_platform(tmp_path_factory):
    with bin_start(tmp_path_factory.mktemp("start"), "bin_start.log") as platform:
        yield platform


def _token(platform) -> str:
    text = platform["log"].read_text()
    password = json.loads((platform["root"] / "airflow_home" / "passwords.json").read_text())["admin"]
    assert f"admin / {password}" in text, "bin/start must print the login"
    response = requests.post(f"{platform['base']}/auth/token", json={"username": "admin", "password": password}, timeout=10)
    response.raise_for_status()
    return response.json()["access_token"]


def test_start_prints_where_the_ui_is_and_how_to_log_in(started_platform):
    text = started_platform["log"].read_text()
    assert f"{started_platform['base'].replace('localhost', 'localhost')}" in text
    assert "Log in as:   admin / " in text


def test_ui_lists_every_vyaparbazaar_dag_with_its_schedule_and_a_triggered_run_succeeds(started_platform):
    base, headers = started_platform["base"], {"Authorization": f"Bearer {_token(started_platform)}"}
    assert requests.get(f"{base}/api/v2/dags", timeout=10).status_code == 401

    def all_dags():
        dags = requests.get(f"{base}/api/v2/dags", params={"tags": "vyaparbazaar", "limit": 100}, headers=headers,
                            timeout=10).json()["dags"]  # fmt: skip
        return dags if len(dags) == 14 else None

    dags = _wait_for(all_dags, 180, "the 14 DAGs (12 pipelines, 2 watchers)", started_platform["proc"], started_platform["log"])
    schedules = {d["dag_id"]: d["timetable_summary"] for d in dags}
    assert schedules["vyapar_sources"] == "5 * * * *"
    assert schedules["vyapar_marts"] == "0 3 * * *"
    assert schedules["vyapar_freshness_watch"] == "*/10 * * * *"

    dag = f"{base}/api/v2/dags/vyapar_intermediate"
    requests.patch(dag, json={"is_paused": False}, headers=headers, timeout=10).raise_for_status()
    run = requests.post(f"{dag}/dagRuns", json={"logical_date": None, "conf": {"full_refresh": False, "select": ""}},
                        headers=headers, timeout=10)  # fmt: skip
    run.raise_for_status()
    run_id = run.json()["dag_run_id"]

    def finished():
        state = requests.get(f"{dag}/dagRuns/{run_id}", headers=headers, timeout=10).json()["state"]
        return state if state in {"success", "failed"} else None

    started = time.monotonic()
    state = _wait_for(finished, 600, "the triggered run", started_platform["proc"], started_platform["log"])
    (ARTIFACTS / "bin_start_timings.json").write_text(json.dumps(
        {"api_healthy_seconds": started_platform["ready_seconds"], "intermediate_run_seconds": time.monotonic() - started}))
    assert state == "success"
