"""`bin/start` platforms for the tests: the helper that starts one (free ports, its own data folder, Airflow home
and .env), and the newcomer's platform, which the first-start, alert-delivery and watcher tests share.

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

REPO_ROOT = Path(__file__).resolve().parents[1]
# The shared platform's waits, shortened from the shipped 10 s backoff and 60 s retry delay (the mechanisms are the
# same; only the numbers in the two declarations differ): the delivery test waits out 5 retries, the watcher test a
# model's retry.
TEST_BACKOFF_SECONDS = 2
TEST_RETRY_DELAY_SECONDS = 30


def free_port() -> int:
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
    port = free_port()
    env = {
        **os.environ,
        "VYAPAR_DATA_DIR": str(root / "data"),
        "AIRFLOW_HOME": str(root / "airflow_home"),
        "AIRFLOW_PORT": str(port),
        "VYAPAR_SCALE": "0.05",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "VYAPAR_ENV_FILE": str(root / ".env"),
        "SMTP_PORT": str(free_port()),
        "MAILPIT_PORT": str(free_port()),
        **extra_env,
    }
    # The test session's own locations (tests/conftest.py) must not leak into the platform: it derives its own.
    for var in ("VYAPAR_LANDING_DIR", "VYAPAR_DUCKDB_PATH", "VYAPAR_WAREHOUSE_LOCK", "VYAPAR_ALERT_STORE_URL",
                "AIRFLOW__COSMOS__CACHE_DIR", "AIRFLOW__COSMOS__DBT_DOCS_PROJECTS"):  # fmt: skip
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
               "launched_at": launched_at, "mail": f"http://127.0.0.1:{env['MAILPIT_PORT']}",
               "smtp_port": int(env["SMTP_PORT"])}  # fmt: skip
    finally:
        with contextlib.suppress(ProcessLookupError):  # stopped already by the Ctrl-C test
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        (ARTIFACTS / artifact).parent.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / artifact).write_text(log.read_text())


@pytest.fixture(scope="session")
def newcomer_slack():
    slack = FakeSlack().start()
    yield slack
    slack.stop()


@pytest.fixture(scope="session")
def newcomer_platform(tmp_path_factory, newcomer_slack):
    """The newcomer's bin/start (DAGs unpaused), with a .env as compose's: Slack through another base URL (a Slack
    stand-in, as a proxy would be), email left to the bundled catcher (SMTP_HOST=mailpit), and the product's alerting
    and schedule declarations with a shorter delivery backoff and retry delay (VYAPAR_* keys, as a user sets them).

    One platform for tests/deployment/test_local_start.py, then (paused: `paused_platform`) the alert-delivery and
    watcher tests; the Ctrl-C test stops it last (the order: tests/conftest.py)."""
    root = tmp_path_factory.mktemp("start")
    alerting = yaml.safe_load(settings.alerting_config_path().read_text())
    alerting["delivery"]["backoff_seconds"] = TEST_BACKOFF_SECONDS
    (root / "alerting.yaml").write_text(yaml.safe_dump(alerting, sort_keys=False))
    schedules = yaml.safe_load(settings.SCHEDULES_FILE.read_text())
    schedules["defaults"]["retry_delay_seconds"] = TEST_RETRY_DELAY_SECONDS
    (root / "schedules.yaml").write_text(yaml.safe_dump(schedules, sort_keys=False))
    (root / ".env").write_text(
        "# as .env.example, with Slack set\n"
        f"SLACK_BOT_TOKEN={newcomer_slack.token}\n"
        f"SLACK_API_URL='{newcomer_slack.api_url}'   # the provider connection's extra.base_url\n"
        "SMTP_HOST=mailpit\n"
        f"VYAPAR_ALERTING_CONFIG={root / 'alerting.yaml'}\n"
        f"VYAPAR_SCHEDULES_FILE={root / 'schedules.yaml'}\n"
    )
    with bin_start(root, "bin_start.log", AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False") as platform:
        yield {**platform, "slack": newcomer_slack}


@pytest.fixture(scope="session")
def paused_platform(newcomer_platform):
    """The newcomer's platform once its own tests are done, every DAG paused (a cron time passing mid-test would
    compete with a test's own trigger), with what a process raising an alert into it needs: its connections,
    declarations and alert store."""
    platform = newcomer_platform
    password = json.loads((platform["root"] / "airflow_home" / "passwords.json").read_text())["admin"]
    token = requests.post(f"{platform['base']}/auth/token", json={"username": "admin", "password": password}, timeout=10)
    token.raise_for_status()
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    dags = requests.get(f"{platform['base']}/api/v2/dags", params={"tags": "vyaparbazaar", "limit": 100},
                        headers=headers, timeout=10).json()["dags"]  # fmt: skip
    for dag in dags:
        requests.patch(f"{platform['base']}/api/v2/dags/{dag['dag_id']}", json={"is_paused": True}, headers=headers,
                       timeout=10).raise_for_status()  # fmt: skip
    root = platform["root"]
    smtp = {"conn_type": "smtp", "host": "127.0.0.1", "port": platform["smtp_port"],
            "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 5, "retry_limit": 0}}  # fmt: skip
    env = {
        "AIRFLOW_CONN_SLACK_ALERTS": platform["slack"].connection_json(),
        "AIRFLOW_CONN_SMTP_ALERTS": json.dumps(smtp),
        "VYAPAR_ALERTING_CONFIG": str(root / "alerting.yaml"),
        "VYAPAR_SCHEDULES_FILE": str(root / "schedules.yaml"),
    }
    return {**platform, "headers": headers, "env": env, "store_url": f"sqlite:///{root / 'data' / 'alerts.sqlite'}"}
