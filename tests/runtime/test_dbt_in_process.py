"""dbt in the task's own process (bin/start's setting): the warehouse lock, the relayed dbt events, the warm
executor's forked processes, and the watcher DAG shape (the producer starts beside plan_selection)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from include.vyapar import settings
from include.vyapar.runtime import dbt_in_process
from include.vyapar.runtime.patches import dbt_runner_in_process
from tests.runtime.conftest import tiny_dbt_project


def _event(name: str, level: str) -> SimpleNamespace:
    return SimpleNamespace(info=SimpleNamespace(name=name, level=level))


def test_warehouse_lock_is_the_flock_dbt_serialized_takes(tmp_path, monkeypatch):
    lock = tmp_path / "warehouse.lock"
    monkeypatch.setenv("VYAPAR_WAREHOUSE_LOCK", str(lock))
    probe = ["flock", "-n", str(lock), "true"]  # what dbt-serialized does first (util-linux flock)
    with dbt_in_process.warehouse_lock():
        assert subprocess.run(probe, check=False).returncode == 1  # held: a dbt subprocess would wait
    assert subprocess.run(probe, check=False).returncode == 0  # released


def test_a_second_in_process_dbt_waits_for_the_lock(tmp_path, monkeypatch):
    monkeypatch.setenv("VYAPAR_WAREHOUSE_LOCK", str(tmp_path / "warehouse.lock"))
    order: list[str] = []

    def second() -> None:
        with dbt_in_process.warehouse_lock():
            order.append("second")

    with dbt_in_process.warehouse_lock():
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.3)
        order.append("first done")
    t.join(5)
    assert order == ["first done", "second"]


def test_event_relay_passes_what_a_dbt_subprocess_prints_in_order_and_drains_on_close():
    received: list[str] = []

    def slow_callback(event) -> None:  # an XCom push through the API server, say
        time.sleep(0.01)
        received.append(event.info.name)

    relay = dbt_in_process.EventRelay([slow_callback])
    started = time.perf_counter()
    for i in range(20):
        relay.submit(_event("SQLQuery", "debug"))  # dbt's debug chatter: never reaches the callback
        relay.submit(_event(f"LogModelResult{i}", "info"))
    relay.submit(_event("RunResultError", "error"))
    submitted = time.perf_counter() - started
    relay.close()
    assert received == [f"LogModelResult{i}" for i in range(20)] + ["RunResultError"]
    assert submitted < 0.1  # dbt's threads never waited for the callback (21 x 10 ms)


def test_a_failing_callback_is_logged_and_the_rest_still_delivered(caplog):
    received: list[str] = []

    def broken(event) -> None:
        raise RuntimeError("API server down")

    relay = dbt_in_process.EventRelay([broken, lambda e: received.append(e.info.name)])
    relay.submit(_event("LogModelResult", "info"))
    relay.close()
    assert received == ["LogModelResult"]
    assert "API server down" in caplog.text


def test_install_is_idempotent():
    from cosmos.operators.local import DbtLocalBaseOperator

    dbt_runner_in_process.install()
    patched = DbtLocalBaseOperator.run_dbt_runner
    dbt_runner_in_process.install()
    assert DbtLocalBaseOperator.run_dbt_runner is patched
    assert patched.__vyapar_patch__


def _writable_from_another_process(path) -> str:
    probe = f"import duckdb; duckdb.connect({str(path)!r}).execute('create or replace table probe as select 1')"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    return "free" if proc.returncode == 0 else proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("failing", [False, True], ids=["build passes", "a model fails"])
def test_a_task_lets_the_duckdb_file_go_with_the_flock(tmp_path, monkeypatch, failing):
    """dbt-duckdb keeps its database open until the process exits: a task that goes on after its dbt (Cosmos'
    post-processing, failure callbacks, alerts) must not keep the file locked once another writer can take the
    flock. Real dbt in this process through Cosmos' dbt_runner call, as patched; then another process writes."""
    from cosmos.operators.local import DbtLocalBaseOperator

    project, warehouse = tiny_dbt_project(
        tmp_path, {"ok": "select 1 as x", "other": "select * from main.absent" if failing else "select 2 as y"}
    )
    monkeypatch.setenv("VYAPAR_WAREHOUSE_LOCK", str(tmp_path / "warehouse.lock"))
    dbt_runner_in_process.install()
    task = SimpleNamespace(_dbt_runner_callbacks=[])
    args = ["dbt", "build", "--project-dir", str(project), "--profiles-dir", str(project), "--quiet"]
    result = DbtLocalBaseOperator.run_dbt_runner(task, args, {}, str(project))
    assert result.success is not failing
    assert _writable_from_another_process(warehouse) == "free"
    # and dbt opens it again in the same process
    assert DbtLocalBaseOperator.run_dbt_runner(task, args, {}, str(project)).success is not failing


def _dbt_in_child(target: str, queue) -> None:
    """A task's first dbt invocation (Cosmos' dbt_runner, as patched), then a parse."""
    import os

    from dbt.cli.main import dbtRunner

    from include.vyapar.data.warehouse import dbt_command
    from include.vyapar.runtime.patches import dbt_runner_in_process

    os.environ.update(settings.dbt_env())
    settings.DUCKDB_PATH.parent.mkdir(parents=True, exist_ok=True)
    compiled = dbt_runner_in_process.invoke(
        dbt_command("compile", "--select", "stg_customers", "--target-path", target, "--log-path", target),
        settings.dbt_env(), str(settings.DBT_PROJECT_DIR), None,
    )  # fmt: skip
    started = time.perf_counter()
    result = dbtRunner().invoke(dbt_command("parse", "--target-path", target, "--log-path", target, "--quiet")[1:])
    queue.put((compiled is not None and bool(compiled.success), bool(result.success), time.perf_counter() - started))


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_task_processes_forked_after_the_warm_up_run_dbt(tmp_path):
    """What WarmLocalExecutor does in the scheduler (import dbt, one parse), then a fork runs dbt as a task does:
    its first invocation from the manifest the warm-up parsed (the project is unchanged), then a parse."""
    code = f"""
import multiprocessing, shutil, sys, time
sys.path.insert(0, {str(settings.REPO_ROOT)!r})
from include.vyapar.runtime import executor
took = executor.preload()
warm = executor.warm_up_dbt()
assert warm is not None, "warm-up failed"
# none of our modules stays imported (each task reads its own settings) but these, which read none: the executor
# itself, the manifest it keeps, and the patches' version guard it checks at start
kept = {{"include.vyapar.runtime", "include.vyapar.runtime.executor", "include.vyapar.runtime.warm_manifest",
        "include.vyapar.runtime.patches"}}
left = [m for m in sys.modules if m.startswith("include.vyapar.") and m not in kept]
assert not left, left
from tests.runtime.test_dbt_in_process import _dbt_in_child
ctx = multiprocessing.get_context("fork")
q = ctx.Queue()
target = {str(tmp_path / "target")!r}
import os; os.makedirs(target)
shutil.copyfile({str(settings.DBT_PROJECT_DIR / "target" / "partial_parse.msgpack")!r}, target + "/partial_parse.msgpack")
p = ctx.Process(target=_dbt_in_child, args=(target, q)); p.start(); p.join(120)
warm_ok, ok, seconds = q.get(timeout=5)
print("RESULT", warm_ok, ok, round(warm, 2), round(seconds, 2), p.exitcode)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT")]
    assert lines, proc.stdout[-2000:] + proc.stderr[-3000:]
    _, warm_ok, ok, warm, seconds, exitcode = lines[0].split()
    assert warm_ok == "True", proc.stdout[-3000:] + proc.stderr[-3000:]  # compiled from the warm manifest
    assert "using the manifest the executor parsed" in proc.stdout + proc.stderr
    assert (tmp_path / "target" / "compiled").is_dir()
    assert ok == "True" and exitcode == "0"
    print(f"warm-up {warm} s; the forked task's partial parse {seconds} s")
    assert (tmp_path / "target" / "manifest.json").exists()


@pytest.fixture(scope="module")
def watcher_dags(monkeypatch_module):
    monkeypatch_module.setenv("VYAPAR_DBT_EXECUTION", "watcher")
    monkeypatch_module.setenv("VYAPAR_DBT_INVOCATION", "dbt_runner")
    from include.vyapar.pipeline.dag_factory import build_all_dags

    return build_all_dags()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_watcher_producer_starts_beside_plan_selection(watcher_dags):
    for dag_id in ("vyapar_staging", "vyapar_intermediate", "vyapar_marts", "vyapar_daily_sales"):
        tasks = watcher_dags[dag_id].task_dict
        producer = tasks["dbt.dbt_producer_watcher"]
        assert "plan_selection" not in producer.upstream_task_ids, dag_id
        sensors = [t for t in tasks.values() if hasattr(t, "model_unique_id")]
        roots = [s for s in sensors if not any(u in tasks and hasattr(tasks[u], "model_unique_id")
                                               for u in s.upstream_task_ids)]  # fmt: skip
        assert roots and all("plan_selection" in s.upstream_task_ids for s in roots), dag_id
    # the sources DAG still lands and checks its batch before the build
    producer = watcher_dags["vyapar_sources"].task_dict["dbt.dbt_producer_watcher"]
    assert producer.upstream_task_ids == {"check_raw_batches"}


def test_the_producer_selects_tests_as_the_model_tasks_do(watcher_dags):
    """The layer's one `dbt build` runs a test once every model it reads is built by then (`buildable`), as each
    model's task does in local execution: not the staging layer running a test of an intermediate model."""
    from dbt.cli.main import dbtRunner

    from include.vyapar.data.warehouse import dbt_command

    producer = watcher_dags["vyapar_staging"].task_dict["dbt.dbt_producer_watcher"]
    assert producer.indirect_selection == "buildable"  # Cosmos' build_cmd: `--indirect-selection buildable`
    assert watcher_dags["vyapar_staging"].task_dict["dbt.stg_orders.run"].indirect_selection == "buildable"

    def tests_listed(*extra: str) -> set[str]:
        args = dbt_command("ls", "--select", "path:models/staging", "--resource-type", "test", "--quiet", *extra)
        result = dbtRunner().invoke(args[1:])
        assert result.success, result.exception
        return set(result.result)

    eager, producers = tests_listed(), tests_listed("--indirect-selection", "buildable")
    later = {t for t in eager if ".intermediate." in t or "customer_behavior" in t}
    assert later and not later & producers, later
    assert producers == eager - later


def test_producer_skips_a_targeted_run_from_the_param_alone(watcher_dags):
    from airflow.exceptions import AirflowSkipException

    from include.vyapar.pipeline.dag_factory import _skip_unless_selected

    producer = watcher_dags["vyapar_staging"].task_dict["dbt.dbt_producer_watcher"]

    class NoXCom:
        def xcom_pull(self, **_):
            raise AssertionError("the producer must not wait for plan_selection's XCom")

    _skip_unless_selected({"task": producer, "ti": NoXCom(), "params": {"select": None}})  # whole DAG: runs
    _skip_unless_selected({"task": producer, "ti": NoXCom(), "params": {"select": "  "}})
    with pytest.raises(AirflowSkipException, match="targeted run"):
        _skip_unless_selected({"task": producer, "ti": NoXCom(), "params": {"select": "stg_orders+"}})
