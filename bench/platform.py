"""A `bin/start` platform for the end-to-end latency measurements (bench/freshness_latency.py,
bench/hourly_latency.py): its own data folder, Airflow home and .env, free ports, every DAG paused at creation (the
script unpauses the ones it measures), and a REST client with the admin's token."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import requests

from bench.common import REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def utc(value: str) -> datetime:
    """An API timestamp as a naive UTC datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)


class Platform:
    def __init__(self, base: str, headers: dict[str, str], data: Path, log: Path):
        self.base, self.headers, self.data, self.log = base, headers, data, log

    def get(self, path: str, **params) -> dict:
        response = requests.get(f"{self.base}/api/v2/{path}", params=params, headers=self.headers, timeout=30)
        response.raise_for_status()
        return response.json()

    def unpause(self, dag_id: str) -> None:
        requests.patch(f"{self.base}/api/v2/dags/{dag_id}", json={"is_paused": False}, headers=self.headers,
                       timeout=10).raise_for_status()  # fmt: skip

    def runs(self, dag_id: str) -> list[dict]:
        return self.get(f"dags/{dag_id}/dagRuns", order_by="-run_after", limit=50)["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances")["task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value"):
        path = f"dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/xcomEntries/{key}"
        return self.get(path, deserialize=True)["value"]


@contextlib.contextmanager
def bin_start(root: Path, dotenv: str, **extra_env: str) -> Iterator[Platform]:
    """`bin/start` on `root` (data in root/data, generated there first by the caller or by bin/start itself),
    stopped with Ctrl-C at the end."""
    (root / ".env").write_text(dotenv)
    port = free_port()
    env = {**os.environ, "VYAPAR_DATA_DIR": str(root / "data"), "AIRFLOW_HOME": str(root / "airflow_home"),
           "AIRFLOW_PORT": str(port), "VYAPAR_SCALE": "0.05", "VYAPAR_ENV_FILE": str(root / ".env"),
           "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True", "SMTP_PORT": str(free_port()),
           "MAILPIT_PORT": str(free_port()), **extra_env}  # fmt: skip
    # The bench's own locations must not leak into the platform: it derives its own from VYAPAR_DATA_DIR.
    for var in ("VYAPAR_LANDING_DIR", "VYAPAR_DUCKDB_PATH", "VYAPAR_WAREHOUSE_LOCK", "VYAPAR_ALERT_STORE_URL",
                "AIRFLOW__COSMOS__CACHE_DIR"):  # fmt: skip
        env.pop(var, None)
    log = root / "start.log"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `kill` of the script stops its platform too
    with log.open("w") as out:
        proc = subprocess.Popen([str(REPO_ROOT / "bin" / "start")], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    base = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base}/api/v2/monitor/health", timeout=5).ok:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"bin/start did not come up:\n{log.read_text()[-3000:]}")
            time.sleep(2)
        password = json.loads((root / "airflow_home" / "passwords.json").read_text())["admin"]
        token = requests.post(f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=10)
        yield Platform(base, {"Authorization": f"Bearer {token.json()['access_token']}"}, root / "data", log)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=60)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
