"""Stale-source alert latency, end to end through the scheduler (issue 21, item 5).

`bin/start` on its own data folder, every DAG paused but the freshness watcher, Slack a local stand-in (its Web API,
as the product's .env points at it). The raw landing is generated so that its newest batch turns 2 hours old (the
stale-data rule's limit) a few minutes after the platform is up. The watcher fires on its cron (every 10 minutes);
the figure is the time from the moment the rule is broken until the alert is in Slack, split into the wait for the
watcher's next cron tick, the scheduler's start of that run, the run until the alert was raised, and the delivery.

    .venv/bin/python -m bench.freshness_latency            # results: bench/results/freshness_latency.json
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import requests

from bench.common import REPO_ROOT, RESULTS_DIR, log

WATCH_DAG = "vyapar_freshness_watch"
LIMIT = timedelta(hours=2)
BREACH_AFTER = timedelta(minutes=6)  # the platform is up after 1-2 minutes


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    sys.path.insert(0, str(REPO_ROOT))
    from tests.fakes.slack_server import FakeSlack

    root = Path(tempfile.mkdtemp(prefix="vyapar-freshness-latency-"))
    data = root / "data"
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    breach_at = now + BREACH_AFTER
    python = str(Path(sys.executable))
    subprocess.run([python, "-m", "include.vyapar.data.datagen", "init", "--scale", "0.05", "--quiet",
                    "--as-of", (now - timedelta(hours=3)).isoformat()],
                   env={**os.environ, "VYAPAR_DATA_DIR": str(data)}, check=True)  # fmt: skip
    subprocess.run([python, "-m", "include.vyapar.data.datagen", "arrive", "--quiet",
                    "--at", (breach_at - LIMIT).isoformat()],
                   env={**os.environ, "VYAPAR_DATA_DIR": str(data)}, check=True)  # fmt: skip
    log(f"newest batch landed at {(breach_at - LIMIT):%H:%M:%S} UTC: the 2-hour rule breaks at {breach_at:%H:%M:%S}")

    slack = FakeSlack().start()
    (root / ".env").write_text(f"SLACK_BOT_TOKEN={slack.token}\nSLACK_API_URL='{slack.api_url}'\n")
    port = _free_port()
    env = {**os.environ, "VYAPAR_DATA_DIR": str(data), "AIRFLOW_HOME": str(root / "airflow_home"),
           "AIRFLOW_PORT": str(port), "VYAPAR_SCALE": "0.05", "VYAPAR_ENV_FILE": str(root / ".env"),
           "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True", "SMTP_PORT": str(_free_port()),
           "MAILPIT_PORT": str(_free_port())}  # fmt: skip
    for var in ("VYAPAR_LANDING_DIR", "VYAPAR_DUCKDB_PATH", "VYAPAR_WAREHOUSE_LOCK", "VYAPAR_ALERT_STORE_URL"):
        env.pop(var, None)
    out = (root / "start.log").open("w")
    proc = subprocess.Popen([str(REPO_ROOT / "bin" / "start")], env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    base = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                if requests.get(f"{base}/api/v2/monitor/health", timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (root / "start.log").read_text()[-3000:]
            time.sleep(2)
        password = json.loads((root / "airflow_home" / "passwords.json").read_text())["admin"]
        token = requests.post(f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=10)
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        requests.patch(f"{base}/api/v2/dags/{WATCH_DAG}", json={"is_paused": False}, headers=headers,
                       timeout=10).raise_for_status()  # fmt: skip
        log(f"platform up at {base}; {WATCH_DAG} unpaused at {datetime.now(UTC):%H:%M:%S}")
        assert datetime.now(UTC).replace(tzinfo=None) < breach_at, "the platform came up after the breach"

        def stale_alert():
            return [m for m in slack.messages if "has not landed" in m.text or "stopped" in m.text]

        deadline = time.monotonic() + 25 * 60
        while not stale_alert():
            assert time.monotonic() < deadline, "no stale-source alert within 25 minutes"
            time.sleep(1)
        message = stale_alert()[0]
        delivered_at = datetime.fromtimestamp(float(message.ts), UTC).replace(tzinfo=None)
        runs = requests.get(f"{base}/api/v2/dags/{WATCH_DAG}/dagRuns", params={"order_by": "-run_after"},
                            headers=headers, timeout=10).json()["dag_runs"]  # fmt: skip
        catching = next(r for r in runs if r["start_date"] and _at(r["start_date"]) <= delivered_at
                        and _at(r["run_after"]) >= breach_at)  # fmt: skip
        tis = requests.get(f"{base}/api/v2/dags/{WATCH_DAG}/dagRuns/{quote(catching['dag_run_id'], safe='')}"
                           "/taskInstances", headers=headers, timeout=10).json()["task_instances"]  # fmt: skip
        task_start = min(_at(t["start_date"]) for t in tis if t["start_date"])
        from include.vyapar.alerting.store import AlertStore

        store = AlertStore(f"sqlite:///{data / 'alerts.sqlite'}")
        raised = min((r["created_at"] for r in store.alerts_since(0) if r["kind"] == "stale_data"), default=None)
        store.engine.dispose()
        raised_at = datetime.fromtimestamp(float(raised), UTC).replace(tzinfo=None) if raised else None
        figures = {
            "breach_at_utc": breach_at.isoformat(),
            "catching_run": catching["dag_run_id"],
            "cron_tick_utc": _at(catching["run_after"]).isoformat(),
            "wait_for_the_cron_tick_seconds": round((_at(catching["run_after"]) - breach_at).total_seconds(), 1),
            "tick_to_task_start_seconds": round((task_start - _at(catching["run_after"])).total_seconds(), 1),
            "task_start_to_alert_raised_seconds": round((raised_at - task_start).total_seconds(), 1) if raised_at else None,
            "raised_to_slack_seconds": round((delivered_at - raised_at).total_seconds(), 1) if raised_at else None,
            "breach_to_slack_seconds": round((delivered_at - breach_at).total_seconds(), 1),
            "alert": message.text[:200],
        }
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        (RESULTS_DIR / "freshness_latency.json").write_text(json.dumps(figures, indent=2) + "\n")
        print(json.dumps(figures, indent=2))
        return 0
    finally:
        try:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
        slack.stop()


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)


if __name__ == "__main__":
    sys.exit(main())
