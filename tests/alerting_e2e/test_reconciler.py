"""The reconciler: a task instance that failed with no callback (killed by SIGKILL or the OOM killer: Airflow runs
no callback then) is found in the metadata database and alerted once."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from tests.airflow_runs import dags_test
from tests.alerting_e2e.conftest import run_id_of, text_of, wait_for

DAG_ID, TASK_ID = "vyapar_alert_digest", "alert_digest"


def _python(code: str, env: dict) -> str:
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True,
                          check=False, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_failed_task_without_callback_is_alerted_once_by_the_sweep(rig_factory):
    rig = rig_factory("reconciler")
    run = dags_test(DAG_ID, env=rig.env())
    assert run.succeeded, run.output[-4000:]
    run_id = run_id_of(run)
    # What the scheduler leaves behind when the task process is SIGKILLed: state failed, no callback, no alert.
    with sqlite3.connect(Path(os.environ["AIRFLOW_HOME"]) / "airflow.db") as con:
        con.execute(
            "update task_instance set state='failed', end_date=? where dag_id=? and run_id=? and task_id=?",
            (datetime.now(UTC).isoformat(sep=" "), DAG_ID, run_id, TASK_ID),
        )
    sweep = "from include.vyapar.alerting.producers.reconciler import sweep; print('raised', sweep())"
    flush = "from include.vyapar.alerting.delivery import flush; flush()"
    # (Other tests' failures in this AIRFLOW_HOME may be swept into this rig's store too: look for ours.)
    _python(sweep, rig.env())
    _python(flush, rig.env())

    def ours():
        return [m for m in rig.top_level() if run_id in text_of(m) and f"{DAG_ID}.{TASK_ID}" in text_of(m)]

    alert = wait_for(ours, what="the reconciler's alert")
    assert len(alert) == 1 and "failed with no failure callback" in text_of(alert[0])
    wait_for(lambda: rig.emails(f"{DAG_ID}.{TASK_ID}"), what="its email (high)")

    sent = len(rig.slack.messages)
    assert "raised 0" in _python(sweep, rig.env())  # found again on the next sweep: already alerted
    _python(flush, rig.env())
    assert len(rig.slack.messages) == sent and len(ours()) == 1
