"""A dbt process SIGKILLed mid-model: the warehouse survives, the task fails (never succeeds), a rerun works."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import psutil
import pytest
import yaml

from include.vyapar import settings

pytestmark = pytest.mark.slow
# a dbt process per model (through dbt-serialized), the one the test kills
DBT_PROCESS = {"VYAPAR_DBT_INVOCATION": "subprocess"}
# a targeted run of the probe alone (the layer's other models were built by the layer runs and stay as they are)
PROBE_ONLY = {"select": "zz_slow_probe", "full_refresh": False}

SLOW_PROBE_SQL = """
-- test-only model: while VYAPAR_PROBE_GATE names a pipe, it waits for a line on it (at no CPU cost; the test never
-- writes one) so the test can kill dbt in the middle of the model
{%- set gate = env_var('VYAPAR_PROBE_GATE', '') %}
select
    (select count(*) from {{ ref('fct_orders') }}) as order_rows,
    {% if gate -%}
    (select count(*) from read_csv('{{ gate }}', header=false, auto_detect=false, columns={'line': 'varchar'}))
    {%- else %}0{% endif %} as waited
"""


@pytest.fixture(scope="module")
def probe_project(tmp_path_factory) -> dict[str, str]:
    """A copy of the dbt project with one slow model in facts, and schedules with a short retry delay."""
    root = tmp_path_factory.mktemp("crash")
    project = root / "dbt"
    shutil.copytree(settings.DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    (project / "models" / "facts" / "zz_slow_probe.sql").write_text(SLOW_PROBE_SQL)
    schedules = yaml.safe_load((settings.REPO_ROOT / "include/vyapar/pipeline/schedules.yaml").read_text())
    schedules["defaults"].update(retry_delay_seconds=1, max_retry_delay_seconds=2)
    (root / "schedules.yaml").write_text(yaml.safe_dump(schedules))
    env = {
        "VYAPAR_DBT_PROJECT_DIR": str(project),
        "VYAPAR_DBT_MANIFEST": str(project / "target" / "manifest.json"),
        "VYAPAR_SCHEDULES_FILE": str(root / "schedules.yaml"),
    }
    subprocess.run(
        [sys.executable, "-m", "include.vyapar.pipeline.manifest"], env={**os.environ, **env}, check=True,
        capture_output=True,
    )  # fmt: skip
    return env


def _kill_probe_dbt_until(done: threading.Event, kills: list[int]) -> None:
    """Kill -9 every dbt process that is running the probe model, once it has had time to start the query."""
    while not done.is_set():
        for proc in psutil.process_iter(["pid", "cmdline", "create_time"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if "zz_slow_probe" in cmdline and " build " in f" {cmdline} " and time.time() - proc.info["create_time"] > 6:
                try:
                    os.kill(proc.info["pid"], signal.SIGKILL)
                    kills.append(proc.info["pid"])
                except ProcessLookupError:
                    pass
        time.sleep(0.5)


def _task_states(dag_id: str, task_id: str) -> list[str]:
    db = Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"
    with sqlite3.connect(db) as con:
        history = con.execute(
            "select state from task_instance_history where dag_id=? and task_id=? order by try_number", (dag_id, task_id)
        ).fetchall()
        current = con.execute(
            "select state from task_instance where dag_id=? and task_id=? order by start_date desc limit 1", (dag_id, task_id)
        ).fetchall()
    return [r[0] for r in history + current]


def test_sigkilled_dbt_fails_the_task_keeps_the_warehouse_and_the_rerun_succeeds(session_warehouse, probe_project, tmp_path):
    from tests.airflow_runs import Gate, dags_test

    with duckdb.connect(str(settings.DUCKDB_PATH), read_only=True) as con:
        before = {t: con.execute(f"select count(*) from core.{t}").fetchone()[0] for t in ("fct_orders", "fct_order_items")}

    gate, done, kills = Gate(tmp_path / "gate"), threading.Event(), []
    killer = threading.Thread(target=_kill_probe_dbt_until, args=(done, kills), daemon=True)
    killer.start()
    try:
        crashed = dags_test("vyapar_facts", conf=PROBE_ONLY, env={**probe_project, **DBT_PROCESS,
                                                                  "VYAPAR_PROBE_GATE": str(gate.path)})  # fmt: skip
    finally:
        done.set()
        killer.join()

    assert kills, "the probe model never ran long enough to be killed"
    assert crashed.state == "failed", crashed.output[-4000:]
    states = _task_states("vyapar_facts", "dbt.zz_slow_probe_model_build")
    assert "success" not in states and states[-1] == "failed", states

    # The file reopens (read-write: no leftover lock), and what was committed before is intact.
    with duckdb.connect(str(settings.DUCKDB_PATH)) as con:
        after = {t: con.execute(f"select count(*) from core.{t}").fetchone()[0] for t in before}
    assert after == before

    rerun = dags_test("vyapar_facts", conf=PROBE_ONLY, env={**probe_project, **DBT_PROCESS})
    assert rerun.succeeded, rerun.output[-4000:]
    print(f"\nkilled {len(kills)} dbt processes in a {crashed.seconds:.1f} s run; the rerun took {rerun.seconds:.1f} s")
    with duckdb.connect(str(settings.DUCKDB_PATH), read_only=True) as con:
        assert con.execute("select order_rows from core.zz_slow_probe").fetchone()[0] == before["fct_orders"]
