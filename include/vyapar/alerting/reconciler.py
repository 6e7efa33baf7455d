"""The backstop for callbacks that never ran: finds failed task instances and DAG runs with no alert and raises one.

Airflow 3 runs no callback for a task killed by SIGKILL or the OOM killer, and DAG-level failure callbacks have
been unreliable. The listener plugin calls `reconcile_dag_run` when a run fails, and a thread in the scheduler
calls `sweep` periodically over the metadata database. Retries in progress are not failures: only state
`failed` counts (a task up for retry is `up_for_retry`).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime, timedelta

from include.vyapar.alerting.alert import Alert, task_log_url
from include.vyapar.alerting.config import get_config
from include.vyapar.alerting.store import enqueue, get_store

log = logging.getLogger(__name__)

SWEEP_LOOKBACK = timedelta(hours=float(os.environ.get("VYAPAR_RECONCILE_LOOKBACK_HOURS", "24")))


def _alerted_task_keys(since: datetime) -> set[tuple[str, str, str]]:
    """(dag_id, run_id, task_id) of every alert stored since `since` — delivered, repeated, folded or silenced."""
    keys = set()
    for row in get_store().list_alerts():
        created = row.get("created_at") or 0
        if created and created < since.timestamp():
            continue
        payload = json.loads(row["payload"]) if isinstance(row.get("payload"), str) else row.get("payload") or {}
        if payload.get("dag_id") and payload.get("task_id"):
            keys.add((payload["dag_id"], payload.get("run_id") or "", payload["task_id"]))
        if payload.get("dag_id") and not payload.get("task_id"):
            keys.add((payload["dag_id"], payload.get("run_id") or "", ""))
    return keys


def task_failure_alert(dag_id: str, run_id: str, task_id: str, try_number: int | None, end_date, hostname: str | None,
                       why: str) -> tuple[Alert, list[str]]:  # fmt: skip
    from include.vyapar.alerting.keys import dedup_key_for_task, upstream_keys_for_task

    base = get_config().links.airflow_base_url
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
        dedup_key=dedup_key_for_task(dag_id, task_id),
    ), upstream_keys_for_task(dag_id, task_id)


def dag_run_failure_alert(dag_id: str, run_id: str, failed_task_ids: list[str], msg: str = "") -> tuple[Alert, list[str]]:
    from include.vyapar.alerting.keys import dedup_key_for_task

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
    return alert, [dedup_key_for_task(dag_id, t) for t in failed_task_ids]


def reconcile_task_instances(task_instances, why: str) -> int:
    """Raise an alert for each failed task instance that has none yet; returns how many were raised."""
    failed = [ti for ti in task_instances if str(getattr(ti, "state", "")) in {"failed", "TaskInstanceState.FAILED"}]
    if not failed:
        return 0
    since = min((ti.end_date or datetime.now(UTC)) for ti in failed) - timedelta(hours=1)
    alerted = _alerted_task_keys(since)
    raised = 0
    for ti in failed:
        if (ti.dag_id, ti.run_id, ti.task_id) in alerted:
            continue
        alert, upstream = task_failure_alert(ti.dag_id, ti.run_id, ti.task_id, ti.try_number, ti.end_date, ti.hostname, why)
        result = enqueue(alert, upstream_keys=upstream)
        log.warning("reconciler: %s.%s (%s) had no alert: %s", ti.dag_id, ti.task_id, ti.run_id, result.status)
        raised += 1
    return raised


def reconcile_dag_run(dag_run, msg: str = "") -> int:
    """A DAG run failed: alert its failed tasks that have no alert, then the run itself (folded into them)."""
    tis = dag_run.get_task_instances()
    raised = reconcile_task_instances(tis, "found when the DAG run failed")
    failed_ids = [ti.task_id for ti in tis if str(ti.state) in {"failed", "TaskInstanceState.FAILED"}]
    alert, upstream = dag_run_failure_alert(dag_run.dag_id, dag_run.run_id, failed_ids, msg)
    enqueue(alert, upstream_keys=upstream)
    return raised + 1


def resolve_dag_run(dag_run) -> None:
    """A DAG run succeeded: the DAG-level incident, if open, is resolved."""
    key = f"failed_run:dag:{dag_run.dag_id}"
    if get_store().has_open_incident(key):
        enqueue(Alert(kind="recovered", subject=f"DAG {dag_run.dag_id} succeeded again", recovery_of=key,
                      dag_id=dag_run.dag_id, run_id=dag_run.run_id, facts={"Run id": dag_run.run_id}))  # fmt: skip


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
