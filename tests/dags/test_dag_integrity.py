"""DAG integrity: every DAG imports, is scheduled as declared, and together the layer DAGs partition dbt."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections import Counter
from datetime import datetime

import pendulum
import pytest

from include.vyapar import settings
from include.vyapar.pipeline.schedules import ScheduleError, load_schedules
from include.vyapar.pipeline.selection import InvalidSelectorError, task_selects, validate_selector
from tests.conftest import ARTIFACTS

EXPECTED_SCHEDULES = {
    "vyapar_sources": "5 * * * *",
    "vyapar_staging": "15 * * * *",
    "vyapar_intermediate": "30 * * * *",
    "vyapar_dimensions": "0 1 * * *",
    "vyapar_facts": "0 2 * * *",
    "vyapar_marts": "0 3 * * *",
    "vyapar_ml_features": "0 4 * * *",
    "vyapar_daily_sales": "0 6 * * *",
    "vyapar_inventory_status": "45 * * * *",
    "vyapar_campaign_performance": "0 8 * * *",
    "vyapar_financial_metrics": "0 5 L * *",
    "vyapar_customer_segments": "0 5 * * 1",
}
OPERATIONS = {"vyapar_warehouse_restore"}  # manual only (schedule None)
WATCHERS = {"vyapar_freshness_watch": "*/10 * * * *", "vyapar_alert_digest": "0 9 * * *", "vyapar_weekly_report": "0 9 * * 1"}
LAYER_DAGS = [d for d in EXPECTED_SCHEDULES if d not in {
    "vyapar_daily_sales", "vyapar_inventory_status", "vyapar_campaign_performance",
    "vyapar_financial_metrics", "vyapar_customer_segments"}]  # fmt: skip


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(settings.REPO_ROOT / "dags")


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(settings.DBT_MANIFEST_PATH.read_text())


def _models(manifest: dict) -> dict[str, dict]:
    return {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}


def _run_tasks(dag) -> list:
    """The task that builds each model (`dbt build --select <model>`: the model, then its tests)."""
    return [t for t in dag.tasks if type(t).__name__ == "DbtBuildLocalOperator"]


def test_every_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == set(EXPECTED_SCHEDULES) | set(WATCHERS) | OPERATIONS


def test_schedules_and_time_zone_are_exactly_as_declared(dagbag):
    for dag_id, cron in {**EXPECTED_SCHEDULES, **WATCHERS}.items():
        timetable = dagbag.dags[dag_id].timetable
        assert timetable._expression == cron, dag_id
        assert str(timetable._timezone.name) == "Asia/Kolkata", dag_id


def test_staggered_layers_fire_in_order_in_ist(dagbag):
    """From midnight IST the layer DAGs fire at :05, :15, :30, then 01:00, 02:00, 03:00, 04:00."""
    from airflow.timetables.base import TimeRestriction

    start = pendulum.datetime(2026, 12, 1, 0, 0, tz="Asia/Kolkata")
    restriction = TimeRestriction(earliest=start, latest=None, catchup=True)  # catchup=False would start from now
    fires = {}
    for dag_id in LAYER_DAGS:
        info = dagbag.dags[dag_id].timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
        fires[dag_id] = pendulum.instance(info.run_after).in_tz("Asia/Kolkata")
    assert [fires[d].strftime("%H:%M") for d in LAYER_DAGS] == ["00:05", "00:15", "00:30", "01:00", "02:00", "03:00", "04:00"]


def test_financial_metrics_fires_on_the_last_day_of_the_month(dagbag):
    from airflow.timetables.base import TimeRestriction

    timetable = dagbag.dags["vyapar_financial_metrics"].timetable
    restriction = TimeRestriction(earliest=pendulum.datetime(2027, 2, 3, tz="Asia/Kolkata"), latest=None, catchup=False)
    info = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert pendulum.instance(info.run_after).in_tz("Asia/Kolkata").to_datetime_string() == "2027-02-28 05:00:00"


def test_every_dag_has_owner_tags_retries_docs_and_one_active_run(dagbag):
    for dag in dagbag.dags.values():
        assert "vyaparbazaar" in dag.tags and len(dag.tags) >= 3, dag.dag_id
        assert dag.doc_md and "schedules.yaml" in dag.doc_md, dag.dag_id
        assert dag.catchup is False and dag.max_active_runs == 1, dag.dag_id
        if dag.dag_id in EXPECTED_SCHEDULES:
            assert set(dag.params) == {"full_refresh", "select"}, dag.dag_id
        for task in dag.tasks:
            assert task.retries >= 2 and task.retry_exponential_backoff, task.task_id
            assert task.owner and task.owner != "airflow", task.task_id


def test_every_model_belongs_to_exactly_one_layer_dag(dagbag, manifest):
    seen = Counter()
    for dag_id in LAYER_DAGS:
        for task in _run_tasks(dagbag.dags[dag_id]):
            seen.update(task_selects(task))
    assert set(seen) == set(_models(manifest))
    assert [m for m, n in seen.items() if n != 1] == []


def test_task_counts_match_the_manifest(dagbag, manifest):
    models = _models(manifest)
    sources = list(manifest["sources"].values())
    tested_sources = {p for t in manifest["nodes"].values() if t["resource_type"] == "test"
                      for p in t["depends_on"]["nodes"] if p.startswith("source.")}  # fmt: skip
    for dag_id in LAYER_DAGS:
        dag = dagbag.dags[dag_id]
        folder = dag_id.removeprefix("vyapar_").replace("ml_features", "ml")
        expected = {m for m, n in models.items() if n["original_file_path"].startswith(f"models/{folder}/")}
        if dag_id == "vyapar_sources":
            assert len([t for t in dag.tasks if type(t).__name__ == "DbtSourceLocalOperator"]) == len(sources)
            assert len([t for t in dag.tasks if type(t).__name__ == "DbtTestLocalOperator"]) == len(tested_sources)
            continue
        builds = [n for t in _run_tasks(dag) for n in task_selects(t)]
        assert sorted(builds) == sorted(expected), dag_id
        snapshot = {"snapshot_warehouse"} if dag_id == "vyapar_dimensions" else set()
        assert {t.task_id for t in dag.tasks} == {"plan_selection"} | snapshot | {t.task_id for t in _run_tasks(dag)}, dag_id


def test_each_business_dag_builds_exactly_its_declared_models(dagbag):
    """A business DAG is the layer DAGs' factory on a list of models: its model tasks are that list, no more (the
    runs of two of them, tests/dags/test_dag_runs.py, show the factory's business DAGs run)."""
    business = [s for s in load_schedules().all if s.kind == "business"]
    assert {s.dag_id for s in business} == set(EXPECTED_SCHEDULES) - set(LAYER_DAGS)
    for schedule in business:
        dag = dagbag.dags[schedule.dag_id]
        assert sorted(n for t in _run_tasks(dag) for n in task_selects(t)) == sorted(schedule.select), schedule.dag_id
        assert {t.task_id for t in dag.tasks} == {"plan_selection"} | {t.task_id for t in _run_tasks(dag)}


def test_dbt_tasks_share_the_single_writer_pool(dagbag):
    for dag in (dagbag.dags[d] for d in EXPECTED_SCHEDULES):
        dbt_tasks = [t for t in dag.tasks if t.task_id.startswith("dbt.")]
        assert dbt_tasks, dag.dag_id
        assert {t.pool for t in dbt_tasks} == {settings.WAREHOUSE_POOL}
    # and across processes: a dbt subprocess runs through dbt-serialized (its flock); dbt in process holds the same
    # flock (runtime/dbt_in_process.py, tested in tests/runtime)
    from include.vyapar.pipeline import cosmos_config

    assert str(cosmos_config.execution_config("local", "subprocess").dbt_executable_path).endswith("dbt-serialized")
    assert cosmos_config.execution_config("local", "dbt_runner").dbt_executable_path == settings.DBT_BIN


def test_parsing_runs_no_dbt_and_no_database_query(monkeypatch, tmp_path):
    """Parse time is a hot path: no subprocess (dbt), no DuckDB connection."""
    import duckdb
    from airflow.dag_processing.dagbag import DagBag

    def forbidden(*args, **kwargs):
        raise AssertionError(f"called at parse time: {args[:1]}")

    monkeypatch.setattr(subprocess, "Popen", forbidden)
    monkeypatch.setattr(duckdb, "connect", forbidden)
    started = time.perf_counter()
    bag = DagBag(settings.REPO_ROOT / "dags")
    elapsed = time.perf_counter() - started
    assert bag.import_errors == {}
    assert len(bag.dags) == len(EXPECTED_SCHEDULES) + len(WATCHERS) + len(OPERATIONS)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "dag_parse_seconds.txt").write_text(f"{elapsed:.3f}\n")
    assert elapsed < 10, f"parsing all DAGs took {elapsed:.2f}s"


def test_layer_dag_with_missing_manifest_fails_with_a_clear_message(monkeypatch, tmp_path):
    from include.vyapar.pipeline import cosmos_config

    monkeypatch.setattr(settings, "DBT_MANIFEST_PATH", tmp_path / "missing" / "manifest.json")
    with pytest.raises(cosmos_config.ManifestMissingError, match="bin/setup"):
        cosmos_config.project_config()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("layers: [{name: x, cron: '5 * * *', select: [a]}]\ntimezone: Asia/Kolkata", "five-field cron"),
        ("layers: [{name: x, cron: '5 * * * *'}]\ntimezone: Asia/Kolkata", "missing required key 'select'"),
        ("layers: [{name: x, cron: '5 * * * *', select: [a], colour: red}]\ntimezone: Asia/Kolkata", "colour"),
        ("layers: []", "timezone"),
        ("defaults: {retries: 0}\ntimezone: UTC", "at least 2"),
    ],
)
def test_bad_schedules_file_names_the_problem(tmp_path, text, message):
    path = tmp_path / "schedules.yaml"
    path.write_text(text)
    with pytest.raises(ScheduleError, match=message):
        load_schedules(path)


@pytest.mark.parametrize(
    "bad",
    [
        "x; rm -rf /", "$(id)", "`id`", "a' b", "stg|cat", "x" * 500,
        # dbt options: each writes where the task can write (dbt/target/manifest.json would break DAG parsing)
        "stg_orders --record-timing-info dbt/target/manifest.json", "stg_orders --target-path /tmp/x",
        "--log-path /tmp/x", "stg_orders -s other", "stg_orders\n", "stg_orders\n--target-path /tmp", "\n",
        "stg_orders\r", "stg_orders\tother",
    ],
)  # fmt: skip
def test_select_param_refuses_shell_injection_and_dbt_options(bad, dagbag):
    from airflow.sdk.definitions.param import ParamsDict

    with pytest.raises(InvalidSelectorError):
        validate_selector(bad)
    params = ParamsDict(dagbag.dags["vyapar_staging"].params)
    with pytest.raises(Exception, match="select"):
        params["select"] = bad
        params.validate()


def test_select_error_names_a_newline_and_an_option_visibly():
    with pytest.raises(InvalidSelectorError, match=r"'\\n'"):
        validate_selector("stg_orders\n")
    with pytest.raises(InvalidSelectorError, match="'--record-timing-info'.*read by dbt as an option"):
        validate_selector("stg_orders --record-timing-info /tmp/x")


@pytest.mark.parametrize(
    "good", ["", "stg_orders", "stg_orders+ +mart_daily_sales", "tag:daily,path:models/marts", "@fct_orders",
             "  stg_orders  ", "2+fct_orders+1", "stg_orders,-x"],
)  # fmt: skip
def test_select_param_accepts_dbt_selectors(good, dagbag):
    from airflow.sdk.definitions.param import ParamsDict

    assert validate_selector(good) == good.split()
    params = ParamsDict(dagbag.dags["vyapar_staging"].params)
    params["select"] = good
    params.validate()  # the trigger form's pattern agrees with validate_selector


def test_start_date_is_in_the_past():
    from include.vyapar.pipeline.dag_factory import START_DATE

    assert START_DATE < pendulum.instance(datetime.now()).add(days=-1)


def test_the_daily_build_starts_with_a_warehouse_snapshot_and_a_restore_dag_validates_its_param(dagbag):
    dimensions = dagbag.dags["vyapar_dimensions"]
    snapshot = dimensions.get_task("snapshot_warehouse")
    assert snapshot.pool == settings.WAREHOUSE_POOL
    assert "plan_selection" in snapshot.downstream_task_ids  # before any dbt task of the layer
    restore = dagbag.dags["vyapar_warehouse_restore"]
    assert type(restore.timetable).__name__ == "NullTimetable"  # manual only
    pattern = restore.params.get_param("snapshot").schema["pattern"]
    assert re.match(pattern, "20261207T013000Z-before-daily-build")
    for hostile in ("../../etc/passwd", "20261207T013000Z-x; rm -rf /", "latest\n", "--help"):
        assert not re.match(pattern, hostile), hostile
