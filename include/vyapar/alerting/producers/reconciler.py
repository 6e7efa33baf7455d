"""The backstop for callbacks that never ran: finds failed task instances and DAG runs with no alert and raises one.

Airflow 3 runs no callback for a task killed by SIGKILL or the OOM killer, and DAG-level failure callbacks have
been unreliable. The listener plugin calls `reconcile_dag_run` when a run fails, and a thread in the scheduler
calls `sweep` periodically over the metadata database. Retries in progress are not failures: only state
`failed` counts (a task up for retry is `up_for_retry`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from include.vyapar import settings
from include.vyapar.alerting import lineage
from include.vyapar.alerting.alert import Alert, task_log_url
from include.vyapar.alerting.config import get_config
from include.vyapar.alerting.incidents import raise_alert, resolve
from include.vyapar.alerting.store import get_store

log = logging.getLogger(__name__)

SWEEP_LOOKBACK = timedelta(hours=settings.RECONCILE_LOOKBACK_HOURS)


def task_failure_alert(dag_id: str, run_id: str, task_id: str, try_number: int | None, end_date, hostname: str | None,
                       why: str) -> tuple[Alert, list[str]]:  # fmt: skip
    base = get_config().links.airflow_base_url
    node = lineage.node_for_task(task_id)
    graph = lineage.manifest()
    return Alert(
        kind="failed_run",
        subject=f"{dag_id}.{task_id} failed with no failure callback ({why})",
        summary=(
            "The task ended in state *failed* but its failure callback never reported it — the usual cause is "
            "the process being killed (SIGKILL, the OOM killer, a lost worker). Check the log and the host."
        ),
        facts={"DAG": dag_id, "Task": task_id, "Run id": run_id, "Try": try_number, "Ended": end_date, "Host": hostname,
               "Found by": "reconciler"},  # fmt: skip
        links={"Task log": task_log_url(base, dag_id, run_id, task_id, try_number)},
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        node_id=node,
        owner=graph.owner_of(node) if node else None,
        # A killed dbt task is its node's failure, whatever DAG ran it; anything else is the task's own.
        dedup_key=f"failed_run:{node}" if node else f"failed_run:{dag_id}.{task_id}",
    ), (graph.upstream_keys(node) if node else [])


def dag_run_failure_alert(dag_id: str, run_id: str, failed_task_ids: list[str], msg: str = "") -> tuple[Alert, list[str]]:
    base = get_config().links.airflow_base_url
    alert = Alert(
        kind="failed_run",
        subject=f"DAG run {dag_id} failed",
        summary=f"The DAG run ended *failed*{': ' + msg if msg else ''}. Failed tasks: {', '.join(failed_task_ids) or 'none recorded'}.",
        facts={"DAG": dag_id, "Run id": run_id, "Failed tasks": ", ".join(failed_task_ids)},
        links={"DAG run": f"{base.rstrip('/')}/dags/{dag_id}/runs/{run_id}"},
        dag_id=dag_id,
        run_id=run_id,
        dedup_key=f"failed_run:dag:{dag_id}",
    )
    # Fold into whatever the failed tasks alerted under (failed_run, data_quality, stale_data, or their roots).
    return alert, get_store().task_alert_keys(dag_id, run_id)


def reconcile_task_instances(task_instances, why: str) -> int:
    """Raise an alert for each failed task instance that has none yet; returns how many were raised."""
    failed = [ti for ti in task_instances if str(getattr(ti, "state", "")) in {"failed", "TaskInstanceState.FAILED"}]
    if not failed:
        return 0
    store = get_store()
    raised = 0
    for ti in failed:
        if store.has_task_alert(ti.dag_id, ti.run_id, ti.task_id):
            continue
        alert, upstream = task_failure_alert(ti.dag_id, ti.run_id, ti.task_id, ti.try_number, ti.end_date, ti.hostname, why)
        result = raise_alert(alert, upstream, kick=False, share_fold=False)  # the listener delivers after
        store.record_task_alert(ti.dag_id, ti.run_id, ti.task_id, result, alert.dedup_key)
        log.warning("reconciler: %s.%s (%s) had no alert: %s", ti.dag_id, ti.task_id, ti.run_id, result.status)
        raised += 1
    return raised


def reconcile_dag_run(dag_run, msg: str = "") -> int:
    """A DAG run failed: alert its failed tasks that have no alert, then the run itself (folded into them)."""
    from sqlalchemy.orm import object_session

    # The scheduler calls listeners inside its own transaction: query with that session, never open another.
    session = object_session(dag_run)
    tis = dag_run.get_task_instances(session=session) if session else dag_run.get_task_instances()
    raised = reconcile_task_instances(tis, "found when the DAG run failed")
    failed_ids = [ti.task_id for ti in tis if str(ti.state) in {"failed", "TaskInstanceState.FAILED"}]
    alert, upstream = dag_run_failure_alert(dag_run.dag_id, dag_run.run_id, failed_ids, msg)
    raise_alert(alert, upstream, kick=False, share_fold=False)
    return raised + 1


def resolve_dag_run(dag_run) -> None:
    """A DAG run succeeded: the DAG-level incident, if open, is resolved."""
    resolve(f"failed_run:dag:{dag_run.dag_id}", f"DAG {dag_run.dag_id} succeeded again", kick=False,
            dag_id=dag_run.dag_id, run_id=dag_run.run_id, facts={"Run id": dag_run.run_id})  # fmt: skip


def sweep(now: datetime | None = None, lookback: timedelta = SWEEP_LOOKBACK) -> int:
    """Look through the metadata database for failed task instances of our DAGs with no alert."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    now = now or datetime.now(UTC)
    with create_session() as session:
        tis = session.scalars(
            select(TaskInstance).where(
                TaskInstance.state == "failed",
                TaskInstance.end_date >= now - lookback,
                TaskInstance.dag_id.like("vyapar_%"),
            )
        ).all()
        return reconcile_task_instances(tis, "found by the periodic sweep")
