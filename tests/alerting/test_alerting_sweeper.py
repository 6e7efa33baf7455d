"""The sweeper: the scheduler's thread that delivers the outbox. It starts with a real scheduler job (Airflow calls
the listeners' `on_starting` before the job has a type) and delivers what no other process will."""

from __future__ import annotations

import threading
import time

from include.vyapar.alerting.alert import Alert


def _sweeper_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "vyapar-alert-sweeper" and t.is_alive()]


def test_a_scheduler_job_starts_the_sweeper_which_delivers_what_nobody_else_will(harness, airflow_db):  # noqa: F811
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.listeners.listener import get_listener_manager

    # Stored by a process that died before its inline attempt (VYAPAR_ALERTING_KICK=0 here: no inline attempt).
    stored = harness.store.enqueue(Alert(kind="data_quality", subject="orders has 12 null customer ids", dag_id="vyapar_facts"))
    job = Job()  # what `airflow scheduler` does: the listeners hear on_starting here, before the type is set
    SchedulerJobRunner(job=job)
    try:
        deadline = time.monotonic() + 60
        while not any("12 null customer ids" in str(m) for m in harness.slack.messages):
            assert time.monotonic() < deadline, "the sweeper delivered nothing in 60 s"
            time.sleep(0.2)
        assert len(_sweeper_threads()) == 1
        # (the sweeper's reconcile pass may also alert on failed runs other tests left in this session's database)
        ours = [d["status"] for d in harness.store.list_deliveries() if d["alert_id"] == stored.alert_id]
        assert ours == ["sent"] * len(stored.delivery_ids) and ours, ours
    finally:
        get_listener_manager().hook.before_stopping(component=job)
    deadline = time.monotonic() + 30
    while _sweeper_threads():
        assert time.monotonic() < deadline, "the sweeper did not stop with the scheduler"
        time.sleep(0.2)
