"""`bin/start` on embedded defaults: a newcomer's one command brings up Airflow standalone with our DAGs, reads
the same .env as compose (Slack, email to a local catcher), runs a first trigger at once, and stops on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import duckdb
import psutil
import pytest
import requests

from include.vyapar import settings
from include.vyapar.pipeline.schedules import load_schedules
from include.vyapar.runtime import dbt_in_process
from tests.bin_start import wait_for
from tests.conftest import ARTIFACTS

REPO_ROOT = Path(__file__).resolve().parents[2]
# The DAGs schedules.yaml declares (12 pipelines and the watchers), each with its cron
DAG_IDS = {s.dag_id for s in (*load_schedules().all, *load_schedules().watchers)}
LAYERS = [s.dag_id for s in load_schedules().layers]  # in schedule order: sources, staging, ..., ml_features

pytestmark = pytest.mark.slow


@pytest.fixture
def started_platform(newcomer_platform):
    """The newcomer's bin/start (tests/bin_start.py): DAGs unpaused, Slack and email from a .env as compose's."""
    return newcomer_platform


@pytest.fixture
def fake_slack(newcomer_platform):
    return newcomer_platform["slack"]


def _headers(platform) -> dict[str, str]:
    if "headers" not in platform:
        platform["headers"] = {"Authorization": f"Bearer {_token(platform)}"}
    return platform["headers"]


def _api(platform, path: str, method: str = "GET", **kwargs):
    response = requests.request(method, platform["base"] + path, headers=_headers(platform), timeout=10, **kwargs)
    response.raise_for_status()
    return response.json()


def _token(platform) -> str:
    text = platform["log"].read_text()
    password = json.loads((platform["root"] / "airflow_home" / "passwords.json").read_text())["admin"]
    assert f"admin / {password}" in text, "bin/start must print the login"
    response = requests.post(
        f"{platform['base']}/auth/token", json={"username": "admin", "password": password}, timeout=10
    )
    response.raise_for_status()
    return response.json()["access_token"]


def test_start_prints_where_the_ui_is_and_how_to_log_in(started_platform):
    text = started_platform["log"].read_text()
    assert f"{started_platform['base'].replace('localhost', 'localhost')}" in text
    assert "Log in as:   admin / " in text


def test_a_fresh_platform_shows_no_open_alerts(started_platform):
    """First contact: bin/start built the warehouse from our own generated data, which pages no one."""
    alerts = _api(started_platform, "/vyapar-health/api/health")["alerts"]
    assert [a for a in alerts if a["status"] == "open"] == [], alerts


def test_ui_lists_every_vyaparbazaar_dag_with_its_schedule_and_a_first_trigger_runs_at_once(started_platform):
    """The newcomer's first trigger (vyapar_staging, as in issue 20) starts at once: no catch-up run before it."""
    base = started_platform["base"]
    assert requests.get(f"{base}/api/v2/dags", timeout=10).status_code == 401

    def all_dags():
        dags = _api(started_platform, "/api/v2/dags", params={"tags": "vyaparbazaar", "limit": 100})["dags"]
        return dags if DAG_IDS <= {d["dag_id"] for d in dags} else None

    dags = wait_for(all_dags, 180, f"the {len(DAG_IDS)} DAGs", started_platform["proc"], started_platform["log"])
    schedules = {d["dag_id"]: d["timetable_summary"] for d in dags}
    assert schedules["vyapar_sources"] == "5 * * * *"
    assert schedules["vyapar_marts"] == "0 3 * * *"
    assert schedules["vyapar_freshness_watch"] == "*/10 * * * *"
    assert not any(d["is_paused"] for d in dags)

    dag = "/api/v2/dags/vyapar_staging"
    triggered = time.monotonic()
    run = _api(
        started_platform,
        f"{dag}/dagRuns",
        "POST",
        json={"logical_date": None, "conf": {"full_refresh": False, "select": ""}},
    )
    path = f"{dag}/dagRuns/{quote(run['dag_run_id'], safe='')}"

    def finished():
        state = _api(started_platform, path)["state"]
        return state if state in {"success", "failed"} else None

    state = wait_for(finished, 600, "the triggered run", started_platform["proc"], started_platform["log"])
    done = _api(started_platform, path)
    queued = (datetime.fromisoformat(done["start_date"]) - datetime.fromisoformat(done["queued_at"])).total_seconds()
    (ARTIFACTS / "bin_start_timings.json").write_text(json.dumps({
        "api_healthy_seconds": round(started_platform["ready_seconds"], 1),
        "first_trigger_queued_seconds": round(queued, 1),
        "first_trigger_to_success_seconds": round(time.monotonic() - triggered, 1),
    }))  # fmt: skip
    assert state == "success"
    assert queued < 30, f"the first trigger waited {queued:.0f} s in the queue"


def test_first_start_queues_no_catch_up_run(started_platform):
    """bin/start has just built the warehouse: no DAG runs for a cron time before it was launched (Airflow's
    catchup=False still ran each DAG's latest one: 14 runs ahead of the newcomer's first trigger)."""
    dags = _api(started_platform, "/api/v2/dags", params={"tags": "vyaparbazaar", "limit": 100})["dags"]
    assert DAG_IDS <= {d["dag_id"] for d in dags} and not any(d["is_paused"] for d in dags)
    for dag in (d for d in dags if d["dag_id"] in DAG_IDS):  # (not a DAG without a schedule)
        assert datetime.fromisoformat(dag["next_dagrun_run_after"]) > started_platform["launched_at"], dag
    runs = _api(started_platform, "/api/v2/dags/~/dagRuns", params={"limit": 100})["dag_runs"]
    catch_up = [(r["dag_id"], r["run_after"]) for r in runs if r["run_type"] == "scheduled"
                and datetime.fromisoformat(r["run_after"]) < started_platform["launched_at"]]  # fmt: skip
    assert not catch_up


def test_every_layer_dag_runs_in_schedule_order_and_builds_every_model(started_platform):
    """The seven layer DAGs, triggered one after the other in schedule order on the newcomer's platform (the product's
    execution: one dbt build per run, each model's task in the triggerer), each succeed: the sources run lands a new
    raw batch, every model is a table in the warehouse, the marts have rows, and the runs end with a checkpoint."""
    data = started_platform["root"] / "data"
    batches = len(list((data / "landing" / "orders").glob("*.parquet")))
    for dag_id in LAYERS:
        run = _api(started_platform, f"/api/v2/dags/{dag_id}/dagRuns", "POST",
                   json={"logical_date": None, "conf": {"full_refresh": False, "select": ""}})  # fmt: skip
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run['dag_run_id'], safe='')}"

        def finished(path=path):
            state = _api(started_platform, path)["state"]
            return state if state in {"success", "failed"} else None

        state = wait_for(finished, 600, f"the {dag_id} run", started_platform["proc"], started_platform["log"])
        if state != "success":
            tis = _api(started_platform, f"{path}/taskInstances", params={"limit": 200})["task_instances"]
            raise AssertionError(f"{dag_id} {state}: {({t['task_id']: t['state'] for t in tis})}")
    assert len(list((data / "landing" / "orders").glob("*.parquet"))) > batches, "the sources run landed no batch"

    manifest = json.loads(settings.DBT_MANIFEST_PATH.read_text())
    models = {f"{n['schema']}.{n['alias']}" for n in manifest["nodes"].values()
              if n["resource_type"] == "model" and n["config"]["materialized"] in {"table", "incremental"}}  # fmt: skip
    warehouse = data / "warehouse" / "vyaparbazaar.duckdb"
    with dbt_in_process.warehouse_lock(warehouse.with_suffix(".lock")):  # a scheduled run may be writing
        with duckdb.connect(str(warehouse), read_only=True) as con:
            tables = dict(con.sql("select schema_name || '.' || table_name, estimated_size from duckdb_tables()").fetchall())
        wal = warehouse.with_name(warehouse.name + ".wal")
        assert not wal.exists() or wal.stat().st_size < 1_000_000
    assert models <= set(tables), sorted(models - set(tables))
    assert all(tables[m] > 0 for m in models if m.startswith("marts.")), tables


def test_env_file_sets_slack_and_email_and_an_alert_email_shows_in_the_local_catcher(started_platform, fake_slack):
    """.env's SLACK_* and SMTP_* become the alert connections (compose's names); a failed run's alert reaches the
    Slack stand-in through SLACK_API_URL and its email the bundled catcher's web page."""
    slack = _api(started_platform, "/api/v2/connections/slack_alerts")
    assert json.loads(slack["extra"])["base_url"] == fake_slack.api_url
    smtp = _api(started_platform, "/api/v2/connections/smtp_alerts")
    assert smtp["host"] == "127.0.0.1"
    text = started_platform["log"].read_text()
    assert (
        f"Alerts:      to slack and email; email to {started_platform['mail'].replace('127.0.0.1', 'localhost')}"
        in text
    )

    dag = "/api/v2/dags/vyapar_dimensions"
    run = _api(
        started_platform, f"{dag}/dagRuns", "POST", json={"logical_date": None, "conf": {"select": "no_such_model"}}
    )

    def emailed():
        messages = requests.get(f"{started_platform['mail']}/api/messages", timeout=5).json()["messages"]
        return [m for m in messages if "vyapar_dimensions" in m["subject"] + m["text"]] or None

    [email, *_] = wait_for(emailed, 300, "the failed run's alert email in the catcher", started_platform["proc"],
                            started_platform["log"])  # fmt: skip
    assert run["dag_run_id"] in email["text"] or "vyapar_dimensions" in email["subject"]
    page = requests.get(started_platform["mail"] + "/", timeout=5).text
    assert email["subject"] in page
    assert wait_for(lambda: fake_slack.messages_in("#data-oncall"), 60, "the Slack alert", started_platform["proc"],
                     started_platform["log"])  # fmt: skip


def test_the_jwt_secret_is_generated_at_the_length_hs512_wants(started_platform):
    """Airflow's own secret is 24 bytes: seven InsecureKeyLengthWarnings on a first start (issue 20). Read after
    the runs and alerts above: none in the whole log."""
    secret = started_platform["root"] / "airflow_home" / "jwt_secret"
    assert len(secret.read_text().strip()) == 64 and secret.stat().st_mode & 0o077 == 0
    assert "InsecureKeyLengthWarning" not in started_platform["log"].read_text()


def test_ctrl_c_stops_the_platform_and_everything_it_started(started_platform):
    """SIGINT to bin/start's process group, as Ctrl-C sends it, while a run is going: every process bin/start
    started is gone within 30 s (Airflow standalone alone stayed up > 90 s with `<defunct>` children)."""
    dag = "/api/v2/dags/vyapar_intermediate"
    _api(started_platform, dag, "PATCH", json={"is_paused": False})  # the tests before it paused the DAGs
    run = _api(started_platform, f"{dag}/dagRuns", "POST", json={"logical_date": None})
    path = f"{dag}/dagRuns/{quote(run['dag_run_id'], safe='')}"
    proc = started_platform["proc"]
    wait_for(lambda: _api(started_platform, path)["state"] == "running", 120, "the run to start", proc,
              started_platform["log"])  # fmt: skip
    tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    assert len(tree) > 5, [p.cmdline()[:3] for p in tree]

    stopping = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=60)
    _, alive = psutil.wait_procs(tree, timeout=30)
    took = time.monotonic() - stopping
    left = [(p.pid, p.cmdline()[:4]) for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"still running {took:.0f} s after Ctrl-C: {left}"
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)
    assert took < 30, f"stopped in {took:.0f} s"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{started_platform['base']}/api/v2/monitor/health", timeout=5)
    (ARTIFACTS / "bin_start_ctrl_c.json").write_text(
        json.dumps({"stopped_seconds": round(took, 1), "processes": len(tree)})
    )
