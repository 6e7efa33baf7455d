"""Airflow's REST API as a user drives it (a token from POST /auth/token, then Bearer requests), for the tests that
start the compose stack: in real containers (test_containers.py) and as local processes (test_compose_stack.py)."""

from __future__ import annotations

import time

import requests


def wait_for(predicate, timeout: float, what: str, interval: float = 2.0):
    """Poll `predicate` until it returns something truthy (a connection error counts as not yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (requests.RequestException, OSError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Api:
    def __init__(self, base: str, username: str, password: str) -> None:
        self.base = base
        response = requests.post(f"{base}/auth/token", json={"username": username, "password": password}, timeout=30)
        response.raise_for_status()
        self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}

    def get(self, path: str, **params):
        response = requests.get(f"{self.base}/api/v2{path}", params=params, headers=self.headers, timeout=30)
        response.raise_for_status()
        return response.json()

    def trigger(self, dag_id: str, conf: dict) -> str:
        """Trigger a run now, as the UI's trigger form does (no logical date: a paused DAG's next cron slot is in the
        future, and a run for it would wait there), and unpause the DAG (a paused DAG's runs wait); `wait_run`
        pauses it again, so no scheduled run of its next slot competes with the test's next trigger."""
        response = requests.post(f"{self.base}/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf},
                                 headers=self.headers, timeout=30)  # fmt: skip
        response.raise_for_status()
        self.pause(dag_id, False)
        return response.json()["dag_run_id"]

    def pause(self, dag_id: str, paused: bool = True) -> None:
        requests.patch(f"{self.base}/api/v2/dags/{dag_id}", json={"is_paused": paused}, headers=self.headers,
                       timeout=30).raise_for_status()  # fmt: skip

    def state(self, dag_id: str, run_id: str) -> str:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 600) -> str:
        state = wait_for(lambda: (s := self.state(dag_id, run_id)) in ("success", "failed") and s, timeout,
                         f"{dag_id} {run_id} to finish")  # fmt: skip
        self.pause(dag_id)
        return state

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        tis = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=200)["task_instances"]
        return {ti["task_id"]: ti["state"] for ti in tis}
