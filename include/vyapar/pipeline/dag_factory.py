"""The one DAG factory: turns each entry of schedules.yaml into an Airflow DAG with a Cosmos task group."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, BaseSensorOperator, Param, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from airflow.timetables.trigger import CronTriggerTimetable
from cosmos import DbtTaskGroup

from include.vyapar import settings
from include.vyapar.alerting.config import load_alerting_config
from include.vyapar.alerting.producers import callbacks
from include.vyapar.pipeline import cosmos_config
from include.vyapar.pipeline.schedules import PipelineSchedule, Schedules, load_schedules
from include.vyapar.pipeline.selection import (
    SELECTOR_MAX_LENGTH,
    SELECTOR_PATTERN,
    InvalidSelectorError,
    resolve_selector,
    task_selects,
    validate_selector,
)
from include.vyapar.runtime.patches import status_board

START_DATE = pendulum.datetime(2026, 1, 1, tz=settings.TIMEZONE)
PLATFORM_TAG = "vyaparbazaar"


def _default_args(schedules: Schedules, schedule: PipelineSchedule) -> dict:
    d = schedules.defaults
    return {
        "owner": schedule.owner,
        "retries": d.retries,
        "retry_delay": timedelta(seconds=d.retry_delay_seconds),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(seconds=d.max_retry_delay_seconds),
        "execution_timeout": timedelta(minutes=d.execution_timeout_minutes),
        # Alerting (include/vyapar/alerting/producers/callbacks.py): a failure alerts once, after the last try; a
        # success resolves the task's open incident. The callbacks never raise.
        "on_failure_callback": callbacks.on_task_failure,
        "on_retry_callback": callbacks.on_task_retry,
        "on_success_callback": callbacks.on_task_success,
    }


def _house_rules(schedules: Schedules, schedule: PipelineSchedule, extra_tags: Iterable[str] = ()) -> dict:
    """What every DAG of the platform shares: its id, no catch-up, one active run, the default args, the tags."""
    return {
        "dag_id": schedule.dag_id,
        "catchup": False,
        "max_active_runs": 1,
        "default_args": _default_args(schedules, schedule),
        "tags": sorted({PLATFORM_TAG, *schedule.tags, *extra_tags}),
    }


def _params() -> dict[str, Param]:
    return {
        "full_refresh": Param(
            False, type="boolean", title="Full refresh",
            description="Rebuild incremental models from scratch (dbt --full-refresh).",
        ),
        # Optional (null allowed): the trigger form marks a plain "string" param required and refuses to trigger
        # with it empty, i.e. with the default. An empty field is sent as null; both mean "run the whole DAG".
        "select": Param(
            None, type=["null", "string"], title="dbt selector",
            description="Targeted rebuild: a dbt selector such as `stg_orders+` or `tag:daily`; "
            "empty runs the whole DAG. Letters, digits and _ . : + * @ , / - and spaces only; no word may start with -.",
            pattern=SELECTOR_PATTERN, maxLength=SELECTOR_MAX_LENGTH,
        ),
    }  # fmt: skip


def _doc_md(schedule: PipelineSchedule) -> str:
    selection = ", ".join(f"`{s}`" for s in schedule.select)
    return (
        f"### {schedule.name.replace('_', ' ').title()} ({schedule.kind})\n\n{schedule.doc}\n\n"
        f"- **Schedule**: `{schedule.cron}` ({schedule.timezone})\n"
        f"- **dbt selection**: {selection}\n"
        f"- **Owner**: {schedule.owner}; priority {schedule.priority}\n\n"
        "Declared in `include/vyapar/pipeline/schedules.yaml`. Trigger with params: `full_refresh` to rebuild "
        "incremental models, `select` for a targeted rebuild of part of this DAG."
    )


def _skip_unless_selected(context) -> None:
    """pre_execute hook of every dbt task: skip it when a targeted run's selection leaves it out."""
    if getattr(context["task"], "_vyapar_producer", False):
        # Watcher mode's producer starts beside plan_selection (not after it): it runs the DAG's whole build, so
        # the `select` param alone decides. A targeted run builds each selected model in its own task instead.
        if ((context.get("params") or {}).get("select") or "").strip():
            raise AirflowSkipException("targeted run: each selected model runs in its own task")
        return
    selected = context["ti"].xcom_pull(task_ids="plan_selection")
    if selected is None:
        return
    names = task_selects(context["task"])
    if names and not names & set(selected):
        raise AirflowSkipException(f"not in this run's selection ({', '.join(sorted(names))})")


def _before_dbt_task(context) -> None:
    """pre_execute of every dbt task: the selection check, then the watchdog (slow and resource alerts); the
    watcher producer's per-node results go to its status board (include/vyapar/runtime/patches/status_board.py)."""
    _skip_unless_selected(context)
    callbacks.start_task_watch(context)
    if getattr(context["task"], "_vyapar_producer", False):
        status_board.open_for(context)


def _after_dbt_task(context, result=None) -> None:
    """post_execute of every dbt task: the board's last push, the watchdog stops."""
    try:
        status_board.close_for(context)
    finally:
        callbacks.stop_task_watch(context, result)


def first_run_next(schedule: PipelineSchedule) -> CronTriggerTimetable:
    """A new DAG's first scheduled run is its next cron time, not the one just past: the first start (bin/start,
    compose's init) has just built the warehouse, and 14 catch-up runs would queue a newcomer's first trigger
    behind them (issue 20). Airflow's documented way: no start_date, and `run_immediately` a zero tolerance (its
    `False` still runs a cron time up to 5 minutes past). Once a DAG has runs, catchup=False applies as before."""
    return CronTriggerTimetable(schedule.cron, timezone=schedule.timezone, run_immediately=timedelta(0))


def build_dag(schedules: Schedules, schedule: PipelineSchedule) -> DAG:
    with DAG(
        **_house_rules(schedules, schedule),
        schedule=first_run_next(schedule),
        doc_md=_doc_md(schedule),
        params=_params(),
        description=schedule.doc[:200] or None,
        on_failure_callback=callbacks.on_dag_failure,
        on_success_callback=callbacks.on_dag_success,
    ) as dag:
        first = None
        if schedule.lands_raw_batch:

            @task(task_id="land_raw_batch")
            def land_raw_batch() -> dict:
                """Land the hour's raw batch (the extractor's drop): one Parquet file per table."""
                from include.vyapar.data.landing import land_hourly_batch

                return land_hourly_batch()

            @task(task_id="check_raw_batches")
            def check_raw_batches(landed: dict) -> list[str]:
                """Check the new files against the landing contract; quarantine unusable ones (named in the error)."""
                from include.vyapar.data.landing import check_raw_batches

                batches = landed.get("batch_ids") if landed.get("simulated", True) else None
                return check_raw_batches(batches)

            first = check_raw_batches(land_raw_batch())

        @task(task_id="plan_selection")
        def plan_selection(params: dict | None = None) -> list[str] | None:
            """Validate the `select` param and resolve it to this DAG's dbt nodes (None: run them all).

            A bad selector fails at once, without retries: the same input would fail the same way.
            """
            try:
                selector_args = validate_selector((params or {}).get("select") or "")
                if not selector_args:
                    return None
                names = resolve_selector(selector_args)
            except InvalidSelectorError as exc:
                raise AirflowFailException(str(exc)) from None
            if not names:
                raise AirflowFailException(f"select {' '.join(selector_args)!r} matches no dbt model or source")
            print(f"Targeted rebuild: {len(names)} node(s) selected: {', '.join(names)}")
            return names

        if schedule.snapshot_before:

            @task(task_id="snapshot_warehouse", pool=settings.WAREHOUSE_POOL)
            def snapshot_warehouse() -> str:
                """Copy the warehouse under the writer lock before the daily build: `vyapar_warehouse_restore`
                puts it back if the build goes wrong."""
                from include.vyapar.data.snapshots import snapshot_before_daily_build

                return snapshot_before_daily_build()

            first = snapshot_warehouse() if first is None else first >> snapshot_warehouse()

        plan = plan_selection()
        if first is not None:
            first >> plan

        execution = cosmos_config.execution_config()
        dbt = DbtTaskGroup(
            group_id="dbt",
            project_config=cosmos_config.project_config(),
            profile_config=cosmos_config.profile_config(),
            execution_config=execution,
            render_config=cosmos_config.render_config(schedule.select, with_sources=schedule.lands_raw_batch),
            operator_args={
                "pool": settings.WAREHOUSE_POOL,
                "full_refresh": "{{ params.full_refresh }}",
                # Cosmos gives its test selection to each model's task only; the watcher's producer (the layer's one
                # `dbt build`) selects tests the same way: not a test of a later layer's model (it would check
                # that model's last build against this layer's new rows) nor one run twice.
                "indirect_selection": execution.test_indirect_selection.value,
                "pre_execute": _before_dbt_task,
                "post_execute": _after_dbt_task,
                # Cosmos calls these with dbt's target/ folder after every dbt run, before it raises on a failed
                # result: the producer's status board goes out at once; per-node results, baselines, recoveries
                # and test warnings come from dbt's own artifacts.
                "callback": [status_board.flush_after_dbt, callbacks.record_dbt_results],
                # Skipped (unselected) upstream models must not block selected downstream ones.
                "trigger_rule": "none_failed",
            },
        )
        plan >> dbt
        _tune_watcher_sensors(dag)
    return dag


def _tune_watcher_sensors(dag: DAG) -> None:
    """Watcher execution (VYAPAR_DBT_EXECUTION=watcher): its per-model sensors start and end in the triggerer
    (include/vyapar/runtime/patches/watcher_trigger.py). Local execution has no sensors: nothing changes there."""
    if any(isinstance(t, BaseSensorOperator) for t in dag.tasks):
        from include.vyapar.runtime.patches.watcher_trigger import (
            end_each_sensor_on_its_own_result,
            settle_the_done_gate_without_a_worker,
            start_producer_beside,
            start_sensors_in_triggerer,
            watch_tests_beside_their_model,
        )

        start_sensors_in_triggerer(dag.tasks, settings.WAREHOUSE_POOL)
        watch_tests_beside_their_model(dag.tasks)
        start_producer_beside(dag.tasks)
        settle_the_done_gate_without_a_worker(dag.tasks)
        end_each_sensor_on_its_own_result(dag.tasks)  # last: it reads the rewired graph


def _import_callable(path: str):
    import importlib

    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def build_watcher_dag(schedules: Schedules, watcher: PipelineSchedule) -> DAG:
    """A watcher: one task calling the declared function (it raises its alerts itself; no dbt, no warehouse)."""
    with DAG(
        **_house_rules(schedules, watcher),
        schedule=first_run_next(watcher),
        doc_md=(
            f"### {watcher.name.replace('_', ' ').title()} (watcher)\n\n{watcher.doc}\n\n"
            f"- **Schedule**: `{watcher.cron}` ({watcher.timezone})\n- **Runs**: `{watcher.run}`\n\n"
            "Declared in `include/vyapar/pipeline/schedules.yaml`."
        ),
        description=watcher.doc[:200] or None,
    ) as dag:

        @task(task_id=watcher.name)
        def run_watcher() -> str:
            """Call the watcher's function; what it found is in this log and, when something is wrong, in an alert."""
            return repr(_import_callable(watcher.run)())[:2000]

        run_watcher()
    return dag


RESTORE_DAG_ID = "vyapar_warehouse_restore"


def build_restore_dag(schedules: Schedules) -> DAG:
    """Manual only: put a warehouse snapshot back (include/vyapar/data/snapshots.py), under the writer lock."""
    from include.vyapar.data.snapshots import NAME_PATTERN

    owner = PipelineSchedule(
        name="warehouse_restore", kind="operations", cron="", select=(), owner=schedules.defaults.owner,
        timezone=schedules.timezone,
    )  # fmt: skip
    with DAG(
        **_house_rules(schedules, owner, extra_tags=("operations", "manual")),
        schedule=None,
        doc_md=(
            "### Warehouse restore (manual)\n\nPuts a snapshot of the DuckDB warehouse back: the one named in "
            "`snapshot`, or when it is empty the newest one not made by a restore. It refuses while a dbt run holds "
            "the warehouse lock, and keeps the state it replaces as a snapshot of its own (reason `before-restore`): "
            "restore that one to undo. The dimensions DAG snapshots the warehouse every night before the daily "
            "build (`snapshot_before` in `include/vyapar/pipeline/schedules.yaml`); "
            "`python -m include.vyapar.data.snapshots list` lists them."
        ),
        params={
            "snapshot": Param(
                None, type=["null", "string"], title="Snapshot",
                description="A snapshot's name, e.g. 20261207T013000Z-before-daily-build; empty: the newest one.",
                pattern=NAME_PATTERN,
            ),
        },  # fmt: skip
    ) as dag:

        @task(task_id="restore_warehouse", pool=settings.WAREHOUSE_POOL)
        def restore_warehouse(params: dict | None = None) -> str:
            """Restore the chosen snapshot; a refusal (a writer is running, no such snapshot) fails without retries."""
            from include.vyapar.data.snapshots import SnapshotError, restore

            try:
                restored, undo = restore((params or {}).get("snapshot") or None)
            except SnapshotError as exc:
                raise AirflowFailException(str(exc)) from None
            undo_text = f"; the replaced warehouse is snapshot {undo.name} (restore it to undo)" if undo else ""
            return f"restored {restored.name}{undo_text}"

        restore_warehouse()
    return dag


def build_all_dags(schedules: Schedules | None = None, only: str | Iterable[str] | None = None) -> dict[str, DAG]:
    """Every DAG; with `only` (include/vyapar/pipeline/parse_scope.py: a task process's own DAG, the DAGs of the callbacks
    a dag-processor parse runs) just those when they are ours: a task starts by parsing this file, and building all
    fourteen (twelve Cosmos groups) cost it seconds."""
    # A bad alerting.yaml is an import error of this file, naming the key (YAML + validation only, no I/O else).
    load_alerting_config()
    schedules = schedules or load_schedules()
    wanted = {only} if isinstance(only, str) else set(only) if only is not None else None
    pipelines = [s for s in schedules.all if wanted is None or s.dag_id in wanted]
    watchers = [w for w in schedules.watchers if wanted is None or w.dag_id in wanted]
    if wanted is not None and not pipelines and not watchers and RESTORE_DAG_ID not in wanted:
        return build_all_dags(schedules)
    dags = {s.dag_id: build_dag(schedules, s) for s in pipelines}
    dags.update({w.dag_id: build_watcher_dag(schedules, w) for w in watchers})
    if wanted is None or RESTORE_DAG_ID in wanted:
        dags[RESTORE_DAG_ID] = build_restore_dag(schedules)
    return dags
