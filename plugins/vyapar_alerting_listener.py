"""Airflow plugin: the alerting backstop. A listener raises alerts for failures no callback reported, and a thread
in the scheduler sweeps the metadata database and flushes the alert outbox periodically.
"""

from __future__ import annotations

import logging
import os
import threading

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin

log = logging.getLogger(__name__)
SWEEP_INTERVAL_SECONDS = float(os.environ.get("VYAPAR_RECONCILE_INTERVAL_SECONDS", "60"))
_stop = threading.Event()


def _in_task_process(task_instance) -> bool:
    # Inside a task the rich on_failure_callback reports the failure; the listener only backs up the others.
    return type(task_instance).__name__ == "RuntimeTaskInstance"


def _safely(what: str, fn, *args) -> None:
    try:
        fn(*args)
    except Exception:  # alerting must never break the scheduler
        log.exception("vyapar alerting listener: %s failed", what)


class AlertingListener:
    @hookimpl
    def on_task_instance_failed(self, previous_state, task_instance, error):
        if _in_task_process(task_instance) or not str(task_instance.dag_id).startswith("vyapar_"):
            return
        from include.vyapar.alerting import kick_flush
        from include.vyapar.alerting.reconciler import reconcile_task_instances

        _safely("reconcile task instance", reconcile_task_instances, [task_instance], f"reported failed: {error}")
        _safely("kick flush", kick_flush)

    @hookimpl
    def on_dag_run_failed(self, dag_run, msg):
        if not str(dag_run.dag_id).startswith("vyapar_"):
            return
        from include.vyapar.alerting import kick_flush
        from include.vyapar.alerting.reconciler import reconcile_dag_run

        _safely("reconcile failed DAG run", reconcile_dag_run, dag_run, msg)
        _safely("kick flush", kick_flush)

    @hookimpl
    def on_dag_run_success(self, dag_run, msg):
        if not str(dag_run.dag_id).startswith("vyapar_"):
            return
        from include.vyapar.alerting import kick_flush
        from include.vyapar.alerting.reconciler import resolve_dag_run

        _safely("resolve DAG incident", resolve_dag_run, dag_run)
        _safely("kick flush", kick_flush)

    @hookimpl
    def on_starting(self, component):
        if getattr(component, "job_type", None) == "SchedulerJob":
            _stop.clear()
            threading.Thread(target=_sweep_forever, name="vyapar-alert-sweeper", daemon=True).start()

    @hookimpl
    def before_stopping(self, component):
        _stop.set()


def _sweep_forever() -> None:
    from include.vyapar.alerting.delivery import flush
    from include.vyapar.alerting.reconciler import sweep

    log.info("vyapar alert sweeper: every %.0f s (reconcile failures, flush the outbox)", SWEEP_INTERVAL_SECONDS)
    while not _stop.wait(SWEEP_INTERVAL_SECONDS):
        _safely("sweep", sweep)
        _safely("flush", flush)


alerting_listener = AlertingListener()


class VyaparAlertingPlugin(AirflowPlugin):
    name = "vyapar_alerting"
    listeners = [alerting_listener]
