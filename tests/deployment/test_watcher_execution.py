"""Cosmos watcher execution (VYAPAR_DBT_EXECUTION=watcher) on a real scheduler and triggerer (`bin/start`).

One producer task runs the layer's `dbt build`; each model keeps a task (a sensor) that starts and ends in the
triggerer (include/vyapar/watcher.py): no worker process, so it has no pid. A targeted run skips the producer, runs
the selected model's sensor as a dbt run of its own on a worker (Cosmos' fallback) and skips the others.
"""

from __future__ import annotations

import json

import duckdb
import pytest
import requests

from tests.deployment.test_local_start import _wait_for, bin_start

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def watcher_platform(tmp_path_factory):
    root = tmp_path_factory.mktemp("watcher")
    with bin_start(root, "bin_start_watcher.log", VYAPAR_DBT_EXECUTION="watcher") as platform:
        password = json.loads((root / "airflow_home" / "passwords.json").read_text())["admin"]
        token = requests.post(f"{platform['base']}/auth/token", json={"username": "admin", "password": password},
                              timeout=10)  # fmt: skip
        token.raise_for_status()
        yield {**platform, "headers": {"Authorization": f"Bearer {token.json()['access_token']}"}}


def _run(platform, dag_id: str, conf: dict, settle: bool = False) -> tuple[str, dict[str, dict]]:
    base, headers = platform["base"], platform["headers"]
    dag = f"{base}/api/v2/dags/{dag_id}"

    def parsed():
        return requests.get(dag, headers=headers, timeout=10).ok

    _wait_for(parsed, 180, f"{dag_id} to be parsed", platform["proc"], platform["log"])
    requests.patch(dag, json={"is_paused": False}, headers=headers, timeout=10).raise_for_status()
    run = requests.post(f"{dag}/dagRuns", json={"logical_date": None, "conf": conf}, headers=headers, timeout=10)
    run.raise_for_status()
    run_id = run.json()["dag_run_id"]

    def finished():
        state = requests.get(f"{dag}/dagRuns/{run_id}", headers=headers, timeout=10).json()["state"]
        return state if state in {"success", "failed"} else None

    state = _wait_for(finished, 600, f"the {dag_id} run", platform["proc"], platform["log"])
    if settle:

        def idle():  # unpausing also queued the latest scheduled slot's run: let it end (it holds the DuckDB file)
            runs = requests.get(f"{dag}/dagRuns", params={"state": ["queued", "running"]}, headers=headers,
                                timeout=10).json()["dag_runs"]  # fmt: skip
            return not runs

        _wait_for(idle, 600, f"no {dag_id} run left running", platform["proc"], platform["log"])
    requests.patch(dag, json={"is_paused": True}, headers=headers, timeout=10).raise_for_status()
    tis = requests.get(f"{dag}/dagRuns/{run_id}/taskInstances", params={"limit": 200}, headers=headers,
                       timeout=10).json()["task_instances"]  # fmt: skip
    return run_id, {"state": state, "tis": {t["task_id"]: t for t in tis}}


def test_a_layer_runs_as_one_build_and_its_model_tasks_never_take_a_worker(watcher_platform):
    run_id, run = _run(watcher_platform, "vyapar_intermediate", {"full_refresh": False, "select": ""}, settle=True)
    tis = run["tis"]
    assert run["state"] == "success", {k: t["state"] for k, t in tis.items()}
    producer = tis["dbt.dbt_producer_watcher"]
    assert producer["state"] == "success" and producer["pid"]
    sensors = {k: t for k, t in tis.items() if k.endswith((".run", ".test"))}
    # a task per model (and per model's tests), as in local execution
    assert {k.split(".")[1] for k in sensors} == {
        "int_as_of", "int_clickstream_events", "int_customer_behavior", "int_orders_enriched",
    }  # fmt: skip
    for task_id, ti in sensors.items():
        assert ti["state"] == "success", (task_id, ti["state"])
        assert not ti["pid"], f"{task_id} ran in a worker process (pid {ti['pid']}): it should end in the triggerer"
    # the model's task log names its dbt result
    log = requests.get(
        f"{watcher_platform['base']}/api/v2/dags/vyapar_intermediate/dagRuns/{run_id}/taskInstances/"
        "dbt.int_customer_behavior.run/logs/1", headers={**watcher_platform["headers"], "Accept": "application/json"},
        timeout=10,
    )  # fmt: skip
    log.raise_for_status()
    assert "model.vyaparbazaar.int_customer_behavior" in log.text  # the trigger's lines: the model it watched
    con = duckdb.connect(str(watcher_platform["root"] / "data" / "warehouse" / "vyaparbazaar.duckdb"), read_only=True)
    try:
        assert con.execute("select count(*) from intermediate.int_customer_behavior").fetchone()[0] > 0
    finally:
        con.close()


def test_a_targeted_run_builds_only_the_selected_model(watcher_platform):
    _, run = _run(watcher_platform, "vyapar_staging", {"full_refresh": False, "select": "stg_orders"})
    states = {k: t["state"] for k, t in run["tis"].items()}
    assert run["state"] == "success", states
    assert states["dbt.dbt_producer_watcher"] == "skipped"
    assert states["dbt.stg_orders.run"] == "success" and states["dbt.stg_orders.test"] == "success"
    # the selected model ran dbt itself (Cosmos' fallback), on a worker
    assert run["tis"]["dbt.stg_orders.run"]["pid"]
    others = {k: s for k, s in states.items() if k.startswith("dbt.stg_") and not k.startswith("dbt.stg_orders.")}
    assert others and set(others.values()) == {"skipped"}, others
