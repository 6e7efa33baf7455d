"""`bin/start` platforms for the tests: the helper that starts one (free ports, its own data folder, Airflow home
and .env), and the one paused platform the watcher and alert-delivery tests share.

A pytest plugin (`pytest_plugins` in tests/conftest.py), so the session fixture is one per worker; the modules that
use it are one xdist group (tests/conftest.py), so it starts once per test run."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
import requests
import yaml

from include.vyapar import settings
from tests.conftest import ARTIFACTS
from tests.fakes.slack_server import FakeSlack
from tests.fakes.smtp_server import FakeSmtp

REPO_ROOT = Path(__file__).resolve().parents[1]
# The shared platform's waits, shortened from the shipped 10 s backoff and 60 s retry delay (the mechanisms are the
# same; only the numbers in the two declarations differ): the delivery test waits out 5 retries, the watcher test a
# model's retry.
TEST_BACKOFF_SECONDS = 2
TEST_RETRY_DELAY_SECONDS = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"bin/start exited ({proc.returncode}) while waiting for {what}:\n{log.read_text()[-5000:]}"
            )
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
    """`bin/start` on a free port with its own data folder, Airflow home, .env (root/.env, if the test writes one)
    and mail catcher ports, DAGs paused (a cron time passing mid-test would compete with a test's own trigger; the
    newcomer's default is unpaused); stopped, and its log kept, at the end."""
    port = _free_port()
    env = {
        **os.environ,
        "VYAPAR_DATA_DIR": str(root / "data"),
        "AIRFLOW_HOME": str(root / "airflow_home"),
        "AIRFLOW_PORT": str(port),
        "VYAPAR_SCALE": "0.05",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "VYAPAR_ENV_FILE": str(root / ".env"),
        "SMTP_PORT": str(_free_port()),
        "MAILPIT_PORT": str(_free_port()),
        **extra_env,
    }
    for var in ("VYAPAR_LANDING_DIR", "VYAPAR_DUCKDB_PATH", "VYAPAR_WAREHOUSE_LOCK"):
        env.pop(var, None)
    log = root / "start.log"
    started, launched_at = time.monotonic(), datetime.now().astimezone()
    with log.open("w") as out:
        proc = subprocess.Popen([str(REPO_ROOT / "bin" / "start")], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    base = f"http://localhost:{port}"
    try:
        wait_for(lambda: requests.get(f"{base}/api/v2/monitor/health", timeout=5).ok, 600, "a healthy API", proc, log)
        yield {"base": base, "root": root, "log": log, "proc": proc, "ready_seconds": time.monotonic() - started,
               "launched_at": launched_at, "mail": f"http://127.0.0.1:{env['MAILPIT_PORT']}"}  # fmt: skip
    finally:
        with contextlib.suppress(ProcessLookupError):  # stopped already by the Ctrl-C test
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / artifact).write_text(log.read_text())


@pytest.fixture(scope="session")
def paused_platform(tmp_path_factory):
    """One `bin/start` (DAGs paused; the product's execution) with Slack and SMTP connections to local stand-ins, and
    the alerting and schedule declarations of the product with shorter backoff and retry delay."""
    root = tmp_path_factory.mktemp("paused-platform")
    alerting = yaml.safe_load(settings.alerting_config_path().read_text())
    alerting["delivery"]["backoff_seconds"] = TEST_BACKOFF_SECONDS
    (root / "alerting.yaml").write_text(yaml.safe_dump(alerting, sort_keys=False))
    schedules = yaml.safe_load(settings.SCHEDULES_FILE.read_text())
    schedules["defaults"]["retry_delay_seconds"] = TEST_RETRY_DELAY_SECONDS
    (root / "schedules.yaml").write_text(yaml.safe_dump(schedules, sort_keys=False))
    slack, smtp = FakeSlack().start(), FakeSmtp().start()
    env = {
        "AIRFLOW_CONN_SLACK_ALERTS": slack.connection_json(),
        "AIRFLOW_CONN_SMTP_ALERTS": smtp.connection_json(),
        "VYAPAR_ALERTING_CONFIG": str(root / "alerting.yaml"),
        "VYAPAR_SCHEDULES_FILE": str(root / "schedules.yaml"),
    }
    try:
        with bin_start(root, "bin_start_paused.log", **env) as platform:
            password = json.loads((root / "airflow_home" / "passwords.json").read_text())["admin"]
            token = requests.post(f"{platform['base']}/auth/token", json={"username": "admin", "password": password},
                                  timeout=10)  # fmt: skip
            token.raise_for_status()
            yield {**platform, "headers": {"Authorization": f"Bearer {token.json()['access_token']}"}, "slack": slack,
                   "smtp": smtp, "env": env, "store_url": f"sqlite:///{root / 'data' / 'alerts.sqlite'}"}  # fmt: skip
    finally:
        slack.stop()
        smtp.stop()
