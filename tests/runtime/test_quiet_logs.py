"""An error-level log line means an error (issue 20): what a first start logs at error level and is not one.
The sensors' reads of the watcher producer's status board (patches/watcher_trigger.py, patches/status_board.py)
and the triggerer's log of a board not pushed yet (patches/xcom_not_found_log.py)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import airflow  # noqa: F401 -- before cosmos (a circular import otherwise)
import httpx
import pytest
import structlog

from include.vyapar.runtime.patches import xcom_not_found_log
from include.vyapar.runtime.patches.status_board import BOARD_KEY

REPO = Path(__file__).resolve().parents[2]
STATUS = "model__vyaparbazaar__stg_orders_status"


def test_a_sensor_reads_no_board_before_its_producer_runs():
    """A first start queues a run's producer behind other runs (one warehouse slot) while its sensors start with the
    run: each board read then was a 404, logged as an error by the Task SDK client (476 lines in issue 20)."""
    from include.vyapar.runtime.patches.watcher_trigger import TriggererWatcherTrigger

    state = {"producer": "queued"}
    board_reads: list[str] = []

    class Stubbed(TriggererWatcherTrigger):
        async def get_xcom_val_af3(self, key):
            board_reads.append(state["producer"])
            return {STATUS: {"status": "success", "outlet_uris": []}} if state["producer"] == "running" else None

    async def producer_state(self):
        return state["producer"]

    cosmos_trigger = Stubbed.__mro__[2]
    original = cosmos_trigger._get_producer_task_status
    cosmos_trigger._get_producer_task_status = producer_state
    try:
        trigger = Stubbed(model_unique_id="model.vyaparbazaar.stg_orders", producer_task_id="dbt.dbt_producer_watcher",
                          dag_id="d", run_id=f"q{time.monotonic()}", map_index=-1, poke_interval=0.01)  # fmt: skip
        for waiting in (None, "scheduled", "queued"):
            state["producer"] = waiting
            Stubbed._producer_states.pop(trigger._run_key, None)  # the shared producer read has expired
            assert asyncio.run(trigger.get_xcom_val(STATUS)) is None
        assert board_reads == []  # no read while the producer waits
        state["producer"] = "running"
        Stubbed._producer_states.pop(trigger._run_key, None)
        assert asyncio.run(trigger.get_xcom_val(STATUS)) == {"status": "success", "outlet_uris": []}
        assert board_reads == ["running"]
    finally:
        cosmos_trigger._get_producer_task_status = original


def _get_xcom_logs(key: str) -> list[dict]:
    """The records the Task SDK client (as the triggerer's supervisor uses it) logs for a read answered 404."""
    from airflow.sdk.api.client import Client

    def not_found(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"detail": {"reason": "not_found", "message": "XCom not found"}})

    client = Client(base_url="http://execution.invalid/", token="t", transport=httpx.MockTransport(not_found))
    with structlog.testing.capture_logs() as records:
        response = client.xcoms.get("d", "r", "dbt.dbt_producer_watcher", key)
    assert response.value is None  # handled: the read returns None
    return [r for r in records if r.get("event") == "XCom not found"]


@pytest.fixture
def board_not_found_at_debug():
    xcom_not_found_log.install()
    yield
    xcom_not_found_log.uninstall()


def test_the_triggerer_logs_a_board_or_node_result_not_yet_pushed_at_debug_and_other_missing_xcoms_as_errors(
    board_not_found_at_debug,
):
    """Between the producer's start and its first push (its DAG parse) a sensor's board read still finds none."""
    assert [r["log_level"] for r in _get_xcom_logs("return_value")] == ["error"]  # (the records are captured)
    assert {r["log_level"] for r in _get_xcom_logs(BOARD_KEY)} <= {"debug"}  # dropped below the log level, or debug
    # a producer that ended without pushing (skipped when plan_selection failed the run): the sensors' reads of
    # Cosmos' per-node keys and start-up events
    for key in (STATUS, "model__vyaparbazaar__stg_orders_dbt_event", "dbt_startup_events"):
        assert {r["log_level"] for r in _get_xcom_logs(key)} <= {"debug"}, key
    assert [r["log_level"] for r in _get_xcom_logs("dbt_outcome")] == ["error"]


def test_the_xcom_log_patch_is_the_triggerers_and_registered_with_its_upstream_issue():
    from include.vyapar.runtime import patches

    patch = next(p for p in patches.PATCHES if p.module == "xcom_not_found_log")
    assert "apache/airflow/issues/73175" in patch.upstream and "apache-airflow-task-sdk" in patch.packages
    # installed at a triggerer's start (airflow_local_settings, before Airflow has finished importing), not elsewhere
    probe = (
        "import sys; from include.vyapar.runtime import patches; patches.install_for_process(['airflow', sys.argv[1]]);"
        "import airflow.sdk.api.client as c; print(type(c.log).__name__)"
    )
    seen = {
        command: subprocess.run(
            [sys.executable, "-c", probe, command], capture_output=True, text=True, check=True, cwd=REPO
        ).stdout.split()[-1]
        for command in ("triggerer", "scheduler")
    }
    assert seen["triggerer"] == "_BoardNotFoundAtDebug" and seen["scheduler"] != "_BoardNotFoundAtDebug"
