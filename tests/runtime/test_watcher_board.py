"""The watcher producer's status board (patches/status_board.py), the triggers reading it (patches/watcher_trigger.py),
the parse scope of a dag-processor callback run (pipeline/parse_scope.py, patches/callback_parse_scope.py) and the
dag-processor and triggerer patches. The real runs: tests/deployment/test_watcher_execution.py."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import airflow  # noqa: F401 -- before cosmos.constants (a circular import otherwise)
import pydantic
from cosmos.constants import _DBT_STARTUP_EVENTS_XCOM_KEY
from cosmos.operators._watcher.base import _store_startup_event_from_log
from cosmos.operators._watcher.state import safe_xcom_push

from include.vyapar.runtime.patches import status_board
from include.vyapar.runtime.patches.status_board import BOARD_KEY, StatusBoard

REPO = Path(__file__).resolve().parents[2]
STATUS = "model__vyaparbazaar__stg_orders_status"


class RecordingTI(pydantic.BaseModel):
    """A task instance's XCom methods on a pydantic model (the SDK's RuntimeTaskInstance is one): what it pushed."""

    task_id: str = "dbt.dbt_producer_watcher"
    pushed: list = []

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed.append((key, json.loads(json.dumps(value))))

    def xcom_pull(self, task_ids=None, key="return_value", **_: Any) -> Any:
        values = [v for k, v in self.pushed if k == key]
        return values[-1] if values else None


def test_per_node_results_go_to_one_board_xcom_and_the_rest_as_before():
    ti = RecordingTI()
    board = StatusBoard.open(ti, flush_seconds=3600)
    assert ti.pushed == [(BOARD_KEY, {})]  # an empty board first: the sensors know one is coming
    safe_xcom_push(ti, STATUS, {"status": "success", "outlet_uris": []})
    safe_xcom_push(ti, "model__vyaparbazaar__stg_orders_tests_status", "pass")
    safe_xcom_push(ti, "model__vyaparbazaar__stg_orders_dbt_event", {"status": "success", "msg": "OK"})
    safe_xcom_push(ti, "model__vyaparbazaar__stg_orders_compiled_sql", "select 1")  # dropped
    safe_xcom_push(ti, "task_status", "completed")  # not a node's: pushed on its own
    assert ti.pushed[1:] == [("task_status", "completed")]
    board.flush()
    board.flush()  # unchanged: no second push
    boards = [v for k, v in ti.pushed if k == BOARD_KEY]
    assert len(boards) == 2 and boards[-1] == {
        STATUS: {"status": "success", "outlet_uris": []},
        "model__vyaparbazaar__stg_orders_tests_status": "pass",
        "model__vyaparbazaar__stg_orders_dbt_event": {"status": "success", "msg": "OK"},
    }
    board.close()
    assert "xcom_push" not in ti.__dict__ and StatusBoard.of(ti) is None  # the task instance's own methods back


def test_dbt_startup_events_are_read_back_from_the_board():
    ti = RecordingTI()
    board = StatusBoard.open(ti, flush_seconds=3600)
    for name in ("MainReportVersion", "AdapterRegistered"):  # Cosmos pulls the list, appends, pushes it back
        _store_startup_event_from_log(ti, {"info": {"name": name, "msg": name, "ts": ""}})
    board.close()
    last = [v for k, v in ti.pushed if k == BOARD_KEY][-1]
    assert [e["name"] for e in last[_DBT_STARTUP_EVENTS_XCOM_KEY]] == ["MainReportVersion", "AdapterRegistered"]


def test_the_board_goes_out_every_tick_while_dbt_runs_and_a_failed_push_is_retried():
    ti = RecordingTI()
    fails = {"left": 1}
    real_push = ti.xcom_push

    def flaky(key, value):
        if key == BOARD_KEY and len(ti.pushed) > 0 and fails["left"]:
            fails["left"] -= 1
            raise ConnectionError("API server away")
        real_push(key, value)

    object.__setattr__(ti, "xcom_push", flaky)
    board = StatusBoard.open(ti, flush_seconds=0.05)
    safe_xcom_push(ti, STATUS, {"status": "success", "outlet_uris": []})
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(k == BOARD_KEY and STATUS in v for k, v in ti.pushed):
        time.sleep(0.02)
    board.close()
    assert fails["left"] == 0 and any(k == BOARD_KEY and STATUS in v for k, v in ti.pushed)


def test_cosmos_callback_and_post_execute_flush_and_close_the_producers_board():
    ti = RecordingTI()
    context = {"ti": ti}
    status_board.open_for(context)
    safe_xcom_push(ti, STATUS, {"status": "error", "outlet_uris": []})
    status_board.flush_after_dbt("/tmp/project", context=context)
    assert [v for k, v in ti.pushed if k == BOARD_KEY][-1][STATUS]["status"] == "error"
    status_board.close_for(context)
    status_board.close_for(context)  # no board any more: nothing
    status_board.flush_after_dbt("/tmp/project", context={"ti": RecordingTI()})  # a task without a board


def test_the_sensors_of_a_run_share_their_reads_and_read_the_board_again_once_the_producer_ended():
    from include.vyapar.runtime.patches.watcher_trigger import TriggererWatcherTrigger

    reads = {"board": 0, "producer": 0, "per_key": 0}
    state = {"producer": "running", "board": {STATUS: {"status": "success", "outlet_uris": []}}}

    class Counting(TriggererWatcherTrigger):
        async def get_xcom_val_af3(self, key):
            if key == BOARD_KEY:
                reads["board"] += 1
                await asyncio.sleep(0.01)
                return dict(state["board"])
            reads["per_key"] += 1
            return None

    async def producer_state(self):
        reads["producer"] += 1
        return state["producer"]

    Counting.__mro__[2]._get_producer_task_status, original = producer_state, Counting.__mro__[2]._get_producer_task_status
    try:
        triggers = [
            Counting(model_unique_id=f"model.vyaparbazaar.m{i}", producer_task_id="dbt.dbt_producer_watcher",
                     dag_id="d", run_id=f"r{time.monotonic()}", map_index=-1, poke_interval=1)  # fmt: skip
            for i in range(20)
        ]
        run_id = triggers[0].run_id
        for t in triggers:
            t.run_id = run_id

        async def poll_all():
            return await asyncio.gather(*(t.get_xcom_val(STATUS) for t in triggers))

        values = asyncio.run(poll_all())
        assert values == [{"status": "success", "outlet_uris": []}] * 20
        assert reads["board"] == 1 and reads["per_key"] == 0  # one read for twenty sensors
        asyncio.run(poll_all())
        assert reads["board"] == 1  # within BOARD_TTL
        assert reads["producer"] == 1  # the board is read once the producer runs: one read of its state for twenty
        state["producer"] = "success"
        state["board"][STATUS] = {"status": "success", "outlet_uris": ["x"]}
        Counting._producer_states.pop(triggers[0]._run_key)  # PRODUCER_STATE_TTL has passed

        async def producer_then_status():
            await asyncio.gather(*(t._get_producer_task_status() for t in triggers))
            return await poll_all()

        values = asyncio.run(producer_then_status())
        assert reads["producer"] == 2  # one read for twenty sensors again
        assert reads["board"] == 2 and values[0]["outlet_uris"] == ["x"]  # the board as of the producer's end
        assert asyncio.run(triggers[0].get_xcom_val("task_status")) is None and reads["per_key"] == 1
    finally:
        Counting.__mro__[2]._get_producer_task_status = original


def test_shared_reads_space_out_with_the_age_of_the_build():
    """A sensor lags its model by at most ~5% of the time it has waited: reads every 0.25 s early on, every 2 s
    in a long build (each read is an API request that takes CPU from the build)."""
    from include.vyapar.runtime.patches.watcher_trigger import TriggererWatcherTrigger

    reads: list[float] = []

    class Counting(TriggererWatcherTrigger):
        async def get_xcom_val_af3(self, key):
            reads.append(time.monotonic())
            return {}

        async def _get_producer_task_status(self):
            return "running"

    trigger = Counting(model_unique_id="model.vyaparbazaar.m", producer_task_id="dbt.dbt_producer_watcher",
                       dag_id="d", run_id=f"age{time.monotonic()}", map_index=-1, poke_interval=1)  # fmt: skip

    async def read_for(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await trigger._board()
            await asyncio.sleep(0.02)

    asyncio.run(read_for(1.0))
    assert 3 <= len(reads) <= 6, len(reads)  # young build: every BOARD_TTL (0.25 s)
    Counting._first_reads[trigger._run_key] = time.monotonic() - 100  # a build 100 s along
    reads.clear()
    asyncio.run(read_for(1.5))
    assert len(reads) <= 1, len(reads)  # every MAX_TTL (2 s)


def test_a_dag_processor_callback_run_builds_only_its_callbacks_dags(tmp_path):
    """airflow.dag_processing.processor._parse_file itself, with a DAG callback request for one DAG."""
    dag_file = tmp_path / "probe_dags.py"
    record = tmp_path / "built.json"
    dag_file.write_text(
        "# airflow dag\nimport json\nfrom include.vyapar.pipeline.parse_scope import dag_ids_to_build\n"
        f"ids = dag_ids_to_build()\nopen({str(record)!r}, 'w').write(json.dumps(sorted(ids) if ids else None))\n"
    )
    script = f"""
import airflow, structlog
from airflow.callbacks.callback_requests import DagCallbackRequest
from airflow.dag_processing.processor import DagFileParseRequest, _parse_file
request = DagCallbackRequest(filepath={dag_file.name!r}, dag_id="vyapar_marts", run_id="r1", bundle_name="dags-folder",
                             bundle_version=None, is_failure_callback=False, msg="success")
_parse_file(DagFileParseRequest(file={str(dag_file)!r}, bundle_path={str(tmp_path)!r}, bundle_name="dags-folder",
                                callback_requests=[request]), structlog.get_logger())
print(open({str(record)!r}).read())
_parse_file(DagFileParseRequest(file={str(dag_file)!r}, bundle_path={str(tmp_path)!r}, bundle_name="dags-folder"),
            structlog.get_logger())
print(open({str(record)!r}).read())
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    lines = [line for line in out.stdout.splitlines() if line.startswith(("[", "null"))]
    assert lines == ['["vyapar_marts"]', "null"], out.stdout[-2000:] + out.stderr[-3000:]


def test_a_callback_only_run_keeps_the_files_parse_time_in_the_dag_processor():
    from airflow.dag_processing.manager import DagFileInfo, DagFileProcessorManager, DagFileStat

    from include.vyapar.runtime import patches

    patches.install_for_process(["airflow", "dag-processor"])  # the module is imported: patched at once
    assert getattr(DagFileProcessorManager.handle_parsing_result, "__vyapar_patch__", False)

    class Proc:
        had_callbacks, parsing_result, start_time = True, None, time.monotonic()

    manager = object.__new__(DagFileProcessorManager)
    file = DagFileInfo(rel_path=Path("vyaparbazaar_pipelines.py"), bundle_name="dags-folder")
    parsed_at = __import__("datetime").datetime(2026, 11, 27, tzinfo=__import__("datetime").UTC)
    object.__setattr__(manager, "_file_stats", {file: DagFileStat(last_finish_time=parsed_at, run_count=3)})
    object.__setattr__(manager, "_multi_team", False)
    DagFileProcessorManager.handle_parsing_result(manager, file, Proc())
    assert manager._file_stats[file].last_finish_time == parsed_at  # not None: the next parse waits its interval


def _watch(model: str, board: dict, producer: str, task_states: list[dict], **kwargs) -> tuple[list, list]:
    """Run one TriggererWatcherTrigger to its event: the producer's board and state, and the states its upstream
    tasks go through (one per read), as the triggerer would give them; returns (events, task-state reads)."""
    from airflow.sdk.execution_time import task_runner

    from include.vyapar.runtime.patches.watcher_trigger import TriggererWatcherTrigger

    reads: list = []

    class Stubbed(TriggererWatcherTrigger):
        async def get_xcom_val_af3(self, key):
            return dict(board) if key == BOARD_KEY else None

        async def _get_producer_task_status(self):
            return producer

        async def _selected(self):
            return True

    def get_task_states(dag_id, task_ids=None, run_ids=None, **_):
        reads.append(sorted(task_ids))
        return {run_ids[0]: task_states[min(len(reads), len(task_states)) - 1]}

    original = task_runner.RuntimeTaskInstance.get_task_states
    task_runner.RuntimeTaskInstance.get_task_states = staticmethod(get_task_states)
    try:
        trigger = Stubbed(model_unique_id=model, producer_task_id="dbt.dbt_producer_watcher", dag_id="d",
                          run_id=f"r{time.monotonic()}", map_index=-1, poke_interval=0.01, **kwargs)  # fmt: skip
        assert Stubbed(**trigger.serialize()[1]).wait_for == trigger.wait_for  # the kwargs survive the database

        async def first_event():
            async for event in trigger.run():
                return [event]

        return asyncio.run(first_event()), reads
    finally:
        task_runner.RuntimeTaskInstance.get_task_states = original


def test_a_sensor_ends_on_its_own_result_and_a_model_dbt_skipped_for_a_failed_upstream_waits_for_it():
    from airflow.triggers.base import TaskFailedEvent, TaskSkippedEvent, TaskSuccessEvent

    up, down = "model.vyaparbazaar.int_orders_enriched", "model.vyaparbazaar.int_customer_behavior"
    key = {m: f"{m.replace('.', '__')}_status" for m in (up, down)}
    wait = {"wait_for": ["dbt.int_orders_enriched.run", "plan_selection"], "upstream_models": [up]}
    # its model built: success at once, whatever the upstream tasks' states (nothing read)
    events, reads = _watch(down, {key[down]: {"status": "success"}}, "running", [{}], **wait)
    assert isinstance(events[0], TaskSuccessEvent) and reads == []
    # dbt failed the upstream model and so did not build this one (Cosmos reports it failed): it waits for the
    # upstream task; failed for good: skipped, no alert of its own
    board = {key[up]: {"status": "error"}, key[down]: {"status": "failed"}}
    retrying = {"dbt.int_orders_enriched.run": "up_for_retry", "plan_selection": "success"}
    failed = {"dbt.int_orders_enriched.run": "failed", "plan_selection": "success"}
    events, reads = _watch(down, board, "running", [retrying, retrying, failed], **wait)
    assert isinstance(events[0], TaskSkippedEvent) and len(reads) == 3
    # ... the upstream succeeded on its retry: this one runs its model on a worker (Cosmos' fallback)
    ok = {"dbt.int_orders_enriched.run": "success", "plan_selection": "success"}
    events, reads = _watch(down, board, "running", [retrying, ok], **wait)
    assert events[0].payload["reason"] == "producer_skipped" and len(reads) == 2
    # ... its upstream's tests failed: the same
    board = {key[up]: {"status": "success"}, f"{up.replace('.', '__')}_tests_status": "fail",
             key[down]: {"status": "failed"}}  # fmt: skip
    assert isinstance(_watch(down, board, "running", [failed], **wait)[0][0], TaskSkippedEvent)
    # the model itself failed: failed
    board = {key[up]: {"status": "success"}, key[down]: {"status": "error"}}
    assert isinstance(_watch(down, board, "running", [{}], **wait)[0][0], TaskFailedEvent)


def test_a_sensor_that_must_run_on_a_worker_first_waits_for_its_upstream_tasks():
    from airflow.triggers.base import TaskSkippedEvent

    down = "model.vyaparbazaar.int_customer_behavior"
    wait = {"wait_for": ["dbt.int_orders_enriched.run", "plan_selection"], "upstream_models": []}
    running = {"dbt.int_orders_enriched.run": "running", "plan_selection": "success"}
    # the producer was skipped (a targeted run): Cosmos' fallback runs the model on a worker, after its upstream
    ok = {"dbt.int_orders_enriched.run": "success", "plan_selection": "success"}
    events, reads = _watch(down, {}, "skipped", [running, running, ok], **wait)
    assert len(reads) == 3 and events[0].payload["reason"] == "producer_skipped"
    # ... and not at all when the upstream failed
    failed = {"dbt.int_orders_enriched.run": "failed", "plan_selection": "success"}
    events, reads = _watch(down, {}, "skipped", [running, failed], **wait)
    assert len(reads) == 2 and isinstance(events[0], TaskSkippedEvent)


def test_watcher_model_tasks_start_with_the_run_and_the_done_gate_decides_its_state(monkeypatch):
    """The sensors do not wait for one another (trigger rule `always`; the graph keeps the lineage), so a model task
    that fails for good may have only skipped tasks after it: Cosmos' done gate, downstream of every sensor and of
    plan_selection (`none_failed`), is the run's one leaf and fails it (ended in the deployment and UI tests)."""
    from cosmos.operators._watcher.base import BaseConsumerSensor

    from include.vyapar.pipeline.dag_factory import build_all_dags

    monkeypatch.setenv("VYAPAR_DBT_EXECUTION", "watcher")
    dag = build_all_dags(only="vyapar_intermediate")["vyapar_intermediate"]
    sensors = [t for t in dag.tasks if isinstance(t, BaseConsumerSensor)]
    assert len(sensors) == 8 and {getattr(t.trigger_rule, "value", t.trigger_rule) for t in sensors} == {"always"}
    behaviour = dag.get_task("dbt.int_customer_behavior.run")
    assert {"dbt.int_orders_enriched.run", "dbt.int_as_of.run"} <= behaviour.upstream_task_ids  # lineage kept
    kwargs = behaviour.start_trigger_args.trigger_kwargs
    assert kwargs["wait_for"] == sorted(behaviour.upstream_task_ids | {"plan_selection"})
    assert kwargs["upstream_models"] == ["model.vyaparbazaar.int_as_of", "model.vyaparbazaar.int_orders_enriched"]
    gate = dag.get_task("dbt.dbt_producer_watcher_done")
    assert [t.task_id for t in dag.leaves] == [gate.task_id] and getattr(gate.trigger_rule, "value", gate.trigger_rule) == "none_failed"
    assert {t.task_id for t in sensors} | {"plan_selection", "dbt.dbt_producer_watcher"} == gate.upstream_task_ids


def test_a_firing_trigger_wakes_the_triggerer_runner_loop_in_the_triggerer_only(monkeypatch):
    """The runner loop hands finished triggers' events on only between its 1 s sleeps: a trigger about to fire
    ends the current sleep; the loop's own period stays Airflow's."""
    import anyio
    from airflow.jobs import triggerer_job_runner

    from include.vyapar.runtime import patches
    from include.vyapar.runtime.patches import triggerer_wake

    monkeypatch.setattr(triggerer_job_runner, "anyio", anyio)
    monkeypatch.setattr(triggerer_wake, "_sleeps", None)
    patches.install_for_process(["airflow", "scheduler"])
    assert triggerer_job_runner.anyio is anyio  # not the triggerer: untouched
    patches.install_for_process(["airflow", "triggerer"])
    patches.install_for_process(["airflow", "triggerer"])  # idempotent
    shim = triggerer_job_runner.anyio
    assert isinstance(shim, triggerer_wake._WakeableSleeps) and shim._anyio is anyio
    assert shim.Event is anyio.Event  # the rest is anyio's own

    async def runner_pass(wake_after: float | None) -> float:
        async def trigger_fires() -> None:
            await asyncio.sleep(wake_after)
            triggerer_wake.wake_trigger_runner()

        if wake_after is not None:
            fired = asyncio.ensure_future(trigger_fires())
        started = time.monotonic()
        with shim.move_on_after(1):  # the runner loop's sleep, as TriggerRunner.arun writes it
            await shim.Event().wait()
        if wake_after is not None:
            await fired
        return time.monotonic() - started

    assert 0.95 < asyncio.run(runner_pass(None)) < 1.5  # nothing fired: Airflow's 1 s
    woken = asyncio.run(runner_pass(0.1))
    assert 0.1 < woken < 0.4, woken
    triggerer_wake.wake_trigger_runner()  # outside an event loop (a worker, the scheduler): nothing happens
