"""Airflow plugin: the alerting backstop and the outbox's sweeper.

A listener raises alerts for failures no callback reported; in the scheduler, a thread delivers the outbox (each
retry when it comes due, the work of deliverers that died) and sweeps the metadata database for unreported failures.
"""

from __future__ import annotations

import logging
import threading
import time

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin

log = logging.getLogger(__name__)
_stop = threading.Event()
_sweeper: threading.Thread | None = None
_sweeper_lock = threading.Lock()


def _in_task_process(task_instance) -> bool:
    # Inside a task the rich on_failure_callback reports the failure; the listener only backs up the others.
    return type(task_instance).__name__ == "RuntimeTaskInstance"


def _safely(what: str, fn, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except Exception:  # alerting must never break the scheduler
        log.exception("vyapar alerting listener: %s failed", what)


def _deliver() -> None:
    from include.vyapar.alerting.delivery import deliver_soon

    deliver_soon(wait=False)  # never hold up the scheduler; in it, this wakes the sweeper


class AlertingListener:
    @hookimpl
    def on_task_instance_failed(self, previous_state, task_instance, error):
        if _in_task_process(task_instance) or not str(task_instance.dag_id).startswith("vyapar_"):
            return
        from include.vyapar.alerting.producers.reconciler import reconcile_task_instances

        _safely("reconcile task instance", reconcile_task_instances, [task_instance], f"reported failed: {error}")
        _safely("deliver", _deliver)

    @hookimpl
    def on_dag_run_failed(self, dag_run, msg):
        if not str(dag_run.dag_id).startswith("vyapar_"):
            return
        from include.vyapar.alerting.producers.reconciler import reconcile_dag_run

        _safely("reconcile failed DAG run", reconcile_dag_run, dag_run, msg)
        _safely("deliver", _deliver)

    @hookimpl
    def on_dag_run_success(self, dag_run, msg):
        if not str(dag_run.dag_id).startswith("vyapar_"):
            return
        from include.vyapar.alerting.producers.reconciler import resolve_dag_run

        _safely("resolve DAG incident", resolve_dag_run, dag_run)
        _safely("deliver", _deliver)

    @hookimpl
    def on_starting(self, component):
        # Airflow calls this from Job.__init__, before the job runner names the job's type (scheduler,
        # dag-processor, triggerer): wait for the name, off the start-up path, and sweep only in a scheduler.
        if type(component).__name__ == "Job":
            threading.Thread(target=_sweep_if_scheduler, args=(component,), name="vyapar-alert-sweeper", daemon=True).start()

    @hookimpl
    def before_stopping(self, component):
        if getattr(component, "job_type", None) == "SchedulerJob":
            from include.vyapar.alerting.delivery import wake_sweeper

            _stop.set()
            wake_sweeper()


def _sweep_if_scheduler(job) -> None:
    global _sweeper
    deadline = time.monotonic() + 120
    while getattr(job, "job_type", None) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if getattr(job, "job_type", None) != "SchedulerJob":
        return
    with _sweeper_lock:
        if _sweeper is not None and _sweeper.is_alive():
            return
        _sweeper = threading.current_thread()
    from include.vyapar import settings
    from include.vyapar.alerting.delivery import deliver_forever
    from include.vyapar.alerting.producers.reconciler import sweep

    _stop.clear()
    deliver_forever(_stop, settings.RECONCILE_INTERVAL_SECONDS, every_interval=sweep)


alerting_listener = AlertingListener()


class VyaparAlertingPlugin(AirflowPlugin):
    name = "vyapar_alerting"
    listeners = [alerting_listener]
