"""The patches of private Airflow/Cosmos/dbt code (include/vyapar/runtime/patches/): the version guard refuses to
start on other versions, importing patches nothing, and one test per patch shows the upstream bug it works around.
When such a test fails after an upgrade, upstream has fixed (or changed) it: delete or re-check the patch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from email.message import Message
from importlib import metadata
from pathlib import Path

import airflow  # noqa: F401 -- before cosmos (a circular import otherwise)
import pytest

from include.vyapar import settings
from include.vyapar.runtime import patches
from tests.runtime.conftest import tiny_dbt_project

REPO = settings.REPO_ROOT
BIN = Path(sys.executable).parent


def _unpatched(function):
    return getattr(function, "__wrapped__", function)


# ------------------------------------------------------------------------------------------------------ the guard
def test_the_installed_versions_are_the_verified_ones():
    assert patches.mismatches() == []
    assert {p for patch in patches.PATCHES for p in patch.packages} == set(patches.VERIFIED)
    modules = {p.name.removesuffix(".py") for p in (REPO / "include/vyapar/runtime/patches").glob("*.py")}
    assert {patch.module for patch in patches.PATCHES} == modules - {"__init__", "after_import"}


def test_another_cosmos_version_is_refused_naming_each_patch_and_both_versions(monkeypatch):
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: "1.16.0" if name == "astronomer-cosmos" else real(name))
    patches._installed.cache_clear()
    try:
        with pytest.raises(patches.UnverifiedVersionsError) as refused:
            patches.install_for_dags()
    finally:
        patches._installed.cache_clear()
    message = str(refused.value)
    assert message.startswith("VyaparBazaar refuses to start")
    assert "patch watcher_trigger (https://github.com/astronomer/astronomer-cosmos/issues/2811): astronomer-cosmos " \
           "installed 1.16.0, verified 1.15.1" in message  # fmt: skip
    assert "patch dag_processor_parse_time" not in message  # Airflow's patches are not concerned


def test_airflow_refuses_to_start_on_a_faked_installed_cosmos_version(tmp_path):
    """A dist-info ahead of the venv on sys.path: Airflow sees astronomer-cosmos 9.9.9, and `airflow dags list`
    (any Airflow process: airflow_local_settings runs first) exits with the message."""
    dist = tmp_path / "astronomer_cosmos-9.9.9.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: astronomer-cosmos\nVersion: 9.9.9\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"}
    proc = subprocess.run([str(BIN / "airflow"), "dags", "list"], env=env, capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert "VyaparBazaar refuses to start" in output, output[-3000:]
    assert "astronomer-cosmos installed 9.9.9, verified 1.15.1" in output


def test_importing_any_module_of_ours_patches_nothing():
    """Every module under include/ imported (not run): Airflow's, Cosmos' and dbt's names are untouched, and no
    import hook is left behind. Only plugins/airflow_local_settings.py and the DAG file install patches."""
    code = f"""
import importlib, pkgutil, sys
sys.path.insert(0, {str(REPO)!r})
sys.argv = ["airflow", "dag-processor"]  # even in the processes the Airflow patches concern
import airflow
import anyio
from airflow.dag_processing.manager import DagFileProcessorManager
from airflow.jobs import triggerer_job_runner
from airflow.providers.smtp.hooks.smtp import SmtpHook
from cosmos.dbt import graph
from cosmos.operators.local import DbtLocalBaseOperator
def snapshot():
    return (DbtLocalBaseOperator.run_dbt_runner, graph.DbtGraph._load_manifest_from_file, graph.get_dbt_packages_subpath,
            DagFileProcessorManager.handle_parsing_result, triggerer_job_runner.anyio, SmtpHook._build_mime_message,
            len(sys.meta_path))
before = snapshot()
import include
names = [m.name for m in pkgutil.walk_packages(include.__path__, "include.") if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
assert snapshot() == before, [i for i, (a, b) in enumerate(zip(before, snapshot(), strict=True)) if a != b]
print("IMPORTED", len(names))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0 and "IMPORTED" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert int(proc.stdout.split("IMPORTED")[1].split()[0]) > 40


def test_a_patch_that_no_longer_fits_fails_the_import_it_hooks_not_just_a_log_line(tmp_path, monkeypatch):
    """An Airflow module patched once imported (the dag-processor's manager, the triggerer's runner): a patch
    that raises makes the import fail, and the process with it."""
    import importlib

    from include.vyapar.runtime.patches.after_import import after_import

    (tmp_path / "vyapar_probe_manager.py").write_text("class Manager:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def patch(module) -> None:
        raise RuntimeError(f"patch probe: {module.__name__}.Manager has no handle_parsing_result")

    after_import("vyapar_probe_manager", patch)
    try:
        with pytest.raises(RuntimeError, match="has no handle_parsing_result"):
            importlib.import_module("vyapar_probe_manager")
    finally:
        sys.modules.pop("vyapar_probe_manager", None)


def test_two_patches_of_one_module_both_run_once_it_is_imported(tmp_path, monkeypatch):
    """The dag-processor's manager carries two patches: the second hook must not be dropped for the first."""
    import importlib

    from include.vyapar.runtime.patches.after_import import after_import

    (tmp_path / "vyapar_probe_twice.py").write_text("ran = []\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    after_import("vyapar_probe_twice", lambda module: module.ran.append("first"))
    after_import("vyapar_probe_twice", lambda module: module.ran.append("second"))
    try:
        assert importlib.import_module("vyapar_probe_twice").ran == ["first", "second"]
    finally:
        sys.modules.pop("vyapar_probe_twice", None)


# ------------------------------------------------------------------------------------ one upstream bug per patch
def test_dag_processor_parse_time__airflow_73432_a_callback_only_run_forgets_the_parse_time():
    """Stock: the stat a callback-only run leaves has no last_finish_time (the file is parsed again, whole)."""
    from datetime import UTC, datetime

    from airflow.dag_processing.manager import DagFileInfo, DagFileProcessorManager, DagFileStat

    class Proc:
        had_callbacks, parsing_result, start_time = True, None, time.monotonic()

    stock = _unpatched(DagFileProcessorManager.handle_parsing_result)
    file = DagFileInfo(rel_path=Path("vyaparbazaar_pipelines.py"), bundle_name="dags-folder")
    parsed_at = datetime(2026, 11, 27, tzinfo=UTC)
    manager = object.__new__(DagFileProcessorManager)
    object.__setattr__(manager, "_file_stats", {file: DagFileStat(last_finish_time=parsed_at, run_count=3)})
    object.__setattr__(manager, "_multi_team", False)
    stock(manager, file, Proc())
    assert manager._file_stats[file].last_finish_time is None  # the bug (ours keeps parsed_at: test_watcher_board)


def test_success_task_callbacks__the_dag_processor_parses_a_file_for_a_success_request_it_drops():
    """Stock: a trigger that ends a task with success sends a TaskCallbackRequest (handle_event_submit); the
    manager queues its DAG file for a parse; the processor then runs nothing for it. Patched: not queued, while a
    failure request still is."""
    import inspect
    from datetime import UTC, datetime
    from uuid import uuid4

    import structlog
    from airflow.callbacks.callback_requests import TaskCallbackRequest
    from airflow.dag_processing import manager as manager_module
    from airflow.dag_processing.processor import _execute_task_callbacks
    from airflow.models import trigger
    from airflow.sdk.api.datamodels._generated import TaskInstance as TIDataModel
    from airflow.utils.state import TaskInstanceState

    from include.vyapar.runtime.patches.success_task_callbacks import drop_success_task_callbacks

    # the sender: a task-ending event with success sends a callback request, whatever callbacks the task has
    end_handler = trigger.handle_event_submit.dispatch(trigger.BaseTaskEndEvent)
    assert "TaskInstanceState.SUCCESS," in inspect.getsource(end_handler)

    def request(state):
        ti = TIDataModel(id=uuid4(), task_id="dbt.stg_orders.run", dag_id="vyapar_staging", run_id="r1", try_number=1,
                         dag_version_id=uuid4(), map_index=-1, hostname="h", start_date=datetime.now(UTC))  # fmt: skip
        return TaskCallbackRequest(filepath="vyaparbazaar_pipelines.py", bundle_name="dags-folder", bundle_version=None,
                                   ti=ti, task_callback_type=state)  # fmt: skip

    class NoDagBag:  # the processor must not even look the DAG up for a success request
        def get_dag(self, *args, **kwargs):
            raise AssertionError("looked up")

    _execute_task_callbacks(NoDagBag(), request(TaskInstanceState.SUCCESS), structlog.get_logger())  # the drop

    queued = []

    class Manager:
        def _add_callback_to_queue(self, req):
            queued.append(req.task_callback_type)

    stock = Manager()
    stock._add_callback_to_queue(request(TaskInstanceState.SUCCESS))
    assert queued == [TaskInstanceState.SUCCESS]  # the file would be parsed for nothing
    assert hasattr(manager_module.DagFileProcessorManager, "_add_callback_to_queue")  # what the patch wraps

    queued.clear()
    drop_success_task_callbacks(type("module", (), {"DagFileProcessorManager": Manager}))
    Manager()._add_callback_to_queue(request(TaskInstanceState.SUCCESS))
    Manager()._add_callback_to_queue(request(TaskInstanceState.FAILED))
    Manager()._add_callback_to_queue(request(TaskInstanceState.UP_FOR_RETRY))
    assert queued == [TaskInstanceState.FAILED, TaskInstanceState.UP_FOR_RETRY]


def test_triggerer_wake__the_trigger_runner_still_sleeps_1_s_between_passes():
    """Stock: TriggerRunner.arun hands fired events on only after `anyio.move_on_after(1)`, the sleep the patch
    can end early. If the loop changed, the patch may no longer fit (or be needed)."""
    import inspect

    from airflow.jobs.triggerer_job_runner import TriggerRunner

    assert "with anyio.move_on_after(1):" in inspect.getsource(TriggerRunner.arun)


def test_callback_parse_scope__a_callback_parse_has_no_parsing_context(tmp_path):
    """Stock: the dag-processor's callback-only parse gives the DAG file no parsing context (so it would build
    every DAG); the requests are on the stack, which callback_parse_scope reads."""
    dag_file, record = tmp_path / "probe_dag.py", tmp_path / "record.json"
    dag_file.write_text(f"""
import json
from airflow.sdk import get_parsing_context
from include.vyapar.runtime.patches.callback_parse_scope import callback_requests
json.dump([get_parsing_context().dag_id, [r.dag_id for r in callback_requests()]], open({str(record)!r}, "w"))
""")
    code = f"""
import sys; sys.path.insert(0, {str(REPO)!r})
import airflow, structlog
from airflow.callbacks.callback_requests import DagCallbackRequest
from airflow.dag_processing.processor import DagFileParseRequest, _parse_file
request = DagCallbackRequest(filepath={dag_file.name!r}, dag_id="vyapar_marts", run_id="r1", bundle_name="dags-folder",
                             bundle_version=None, is_failure_callback=False, msg="success")
_parse_file(DagFileParseRequest(file={str(dag_file)!r}, bundle_path={str(tmp_path)!r}, bundle_name="dags-folder",
                                callback_requests=[request]), structlog.get_logger())
print("RECORD", open({str(record)!r}).read())
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                          check=False)  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RECORD")]
    assert lines, proc.stdout[-2000:] + proc.stderr[-3000:]
    own_dag_id, requested = json.loads(lines[0].removeprefix("RECORD "))
    assert own_dag_id is None  # the gap
    assert requested == ["vyapar_marts"]  # what the patch reads instead


def test_cosmos_manifest_cache__cosmos_2294_each_task_group_decodes_the_manifest_again():
    from cosmos.dbt.graph import DbtGraph

    from include.vyapar.runtime.patches import cosmos_manifest_cache

    stock = _unpatched(DbtGraph._load_manifest_from_file)
    path = settings.DBT_MANIFEST_PATH
    first, second = stock(None, path), stock(None, path)
    assert first == second and first is not second  # the bug: decoded once per DbtTaskGroup
    cosmos_manifest_cache.install()
    cosmos_manifest_cache.install()  # idempotent
    assert DbtGraph._load_manifest_from_file(None, path) is DbtGraph._load_manifest_from_file(None, path)
    assert isinstance(_unpatched(DbtGraph._load_manifest_from_file), type(stock))


def test_dbt_runner_in_process__dbt_duckdb_616_dbt_keeps_the_duckdb_file_after_an_invocation(tmp_path):
    """Stock: after dbtRunner().invoke(build) the process still holds the DuckDB file: another process cannot
    write it (ours closes it: test_dbt_in_process.test_a_task_lets_the_duckdb_file_go_with_the_flock)."""
    project, warehouse = tiny_dbt_project(tmp_path, {"ok": "select 1 as x"})
    code = f"""
import subprocess, sys
from dbt.cli.main import dbtRunner
assert dbtRunner().invoke(["build", "--project-dir", {str(project)!r}, "--profiles-dir", {str(project)!r}, "--quiet"]).success
probe = "import duckdb; duckdb.connect({str(warehouse)!r}).execute('create table t as select 1')"
other = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
print("OTHER", other.returncode, other.stderr.strip().splitlines()[-1:] )
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          check=False)  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("OTHER")]
    assert lines, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert not lines[0].startswith("OTHER 0") and "lock" in lines[0].lower(), lines[0]


def test_status_board__cosmos_2736_the_producer_pushes_an_xcom_per_node_event():
    """Stock: Cosmos' producer pushes one XCom per lifecycle event of every node (each a round trip through the
    API server); with the board, a node's results are one value of one XCom pushed per tick."""
    from cosmos.operators._watcher.base import _process_dbt_log_event

    from include.vyapar.runtime.patches.status_board import BOARD_KEY, StatusBoard
    from tests.runtime.test_watcher_board import RecordingTI

    def build(ti) -> None:
        for node in ("stg_orders", "stg_customers", "stg_products"):
            for event in ("NodeStart", "NodeCompiling", "NodeExecuting", "NodeFinished"):
                _process_dbt_log_event(ti, {"info": {"name": event}, "data": {"node_info": {
                    "unique_id": f"model.vyaparbazaar.{node}", "node_status": "success"}}})  # fmt: skip

    stock = RecordingTI(pushed=[])
    build(stock)
    assert len(stock.pushed) == 12  # the bug: 4 pushes a node
    ours = RecordingTI(pushed=[])
    board = StatusBoard.open(ours, flush_seconds=3600)
    build(ours)
    board.close()
    assert [k for k, _ in ours.pushed] == [BOARD_KEY, BOARD_KEY]  # the empty board, then the final one
    assert len(ours.pushed[-1][1]) == 3


@pytest.fixture
def stock_watcher_group():
    """A stock Cosmos watcher task group of our intermediate layer (no rewiring of ours)."""
    from airflow.sdk import DAG
    from cosmos import DbtTaskGroup

    from include.vyapar.pipeline import cosmos_config

    with DAG(dag_id="stock_watcher", schedule=None) as dag:
        DbtTaskGroup(
            group_id="dbt", project_config=cosmos_config.project_config(),
            profile_config=cosmos_config.profile_config(),
            execution_config=cosmos_config.execution_config("watcher", "dbt_runner"),
            render_config=cosmos_config.render_config(("path:models/intermediate",), execution="watcher"),
        )  # fmt: skip
    return dag


def test_watcher_trigger__cosmos_2811_model_tasks_start_on_a_worker(stock_watcher_group):
    """Stock: every watcher model task (a sensor) first takes a worker process to poke once, then defers; ours
    start (and end) in the triggerer."""
    from cosmos.operators._watcher.base import BaseConsumerSensor

    from include.vyapar.runtime.patches.watcher_trigger import start_sensors_in_triggerer

    sensors = [t for t in stock_watcher_group.tasks if isinstance(t, BaseConsumerSensor)]
    assert sensors and not any(t.start_from_trigger for t in sensors)  # the gap
    assert start_sensors_in_triggerer(sensors, settings.WAREHOUSE_POOL) == len(sensors)
    assert all(t.start_from_trigger and t.start_trigger_args.trigger_cls.endswith(".TriggererWatcherTrigger")
               for t in sensors)  # fmt: skip


def test_smtp_plain_text__smtp_hook_sends_html_without_a_text_part():
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    from include.vyapar.runtime.patches.smtp_plain_text import alert_smtp_hook

    def parts(message) -> list[str]:
        return [p.get_content_type() for p in message.walk() if not p.is_multipart()]

    args = ("alerts@example.com", ["oncall@example.com"], "vyapar_marts failed", "<p>vyapar_marts failed</p>")
    stock, _ = SmtpHook(smtp_conn_id="smtp_default")._build_mime_message(*args, mime_subtype="alternative")
    assert "text/plain" not in parts(stock)  # the gap
    ours, _ = alert_smtp_hook("smtp_default", 5, "vyapar_marts failed")._build_mime_message(
        *args, mime_subtype="alternative"
    )
    assert parts(ours)[:2] == ["text/plain", "text/html"]
    assert isinstance(ours, Message)
