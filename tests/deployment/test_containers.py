"""`docker compose up` for real: the unchanged Dockerfile and docker-compose.yaml, built and started as containers.

No image can be pulled on this machine, so the base images the compose file names are built here first, from
Debian's packages and PyPI, and tagged with the upstream names (tests/deployment/images/, each with a header
saying what it stands in for and what it keeps). Then `podman-compose` builds our Dockerfile and starts our
docker-compose.yaml, as they are, from a `.env` written with fresh secrets, plus a test-only override
(images/compose.test-override.yaml) that only shortens a timeout. Two limits of this machine's podman 4.3 are worked
around the way Compose itself would behave: healthchecks are run with `podman healthcheck run` (podman
schedules them with systemd timers, and there is no systemd here), and services are started one by one in
the order depends_on states, each after its conditions hold (podman-compose ignores `service_healthy`).

The journey: images (cached by a content hash), build, up until every service is healthy, a login through the
API, the sources and staging DAGs triggered, their rows read from the warehouse inside its volume, a model made
to fail and its alert email read from the mail catcher's API, `down` then `up` keeping the data, the login and
the alert history, the scheduler container killed mid-run and the run finishing after it restarts, `down -v`.
Timings land in test-artifacts/containers/timings.json, every container's log beside it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from tests.conftest import ARTIFACTS as ALL_ARTIFACTS
from tests.deployment.compose_stack import Stack, env_values, missing_tools
from tests.deployment.images import build as images
from tests.deployment.rest_api import Api, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ALL_ARTIFACTS / "containers"
SCALE = "0.05"  # raw data of the first start: 5k clickstream events, enough for every model to have rows

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tools():
    missing = missing_tools()
    if missing:
        message = "the container test needs: " + "; ".join(missing)
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message, pytrace=False)  # CI installs all of it: missing there is a failure, not a skip
        pytest.skip(message)


def test_every_image_the_compose_file_names_has_a_stand_in_with_its_header():
    """Each base image named by docker-compose.yaml or the Dockerfile is built here, tagged with its upstream name,
    and its Containerfile says first which image it stands in for and which parts of its contract it keeps."""
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yaml").read_text(encoding="utf-8"))
    stack = [
        spec
        for spec in compose["services"].values()
        if set(spec.get("profiles") or ["default"]) & {"default", "celery"}
    ]
    named = {spec["image"] for spec in stack if "build" not in spec}  # the default stack and the celery profile
    named |= set(re.findall(r"^FROM\s+(\S+)", (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8"), re.M))

    def qualified(name: str) -> str:
        if "/" in name and "." in name.split("/")[0]:  # a registry host
            return name
        return f"docker.io/{name}" if "/" in name else f"docker.io/library/{name}"

    tags = {s.tag: s for s in images.STAND_INS.values()}
    assert {qualified(n) for n in named} == set(tags)
    for stand_in in images.STAND_INS.values():
        header = (stand_in.folder / "Containerfile").read_text(encoding="utf-8").split("\nARG ", 1)[0]
        assert header.startswith(f"# Stands in for {stand_in.tag} "), stand_in.name
        assert "contract it keeps" in header and "Not kept" in header, stand_in.name
        assert stand_in.packages(), stand_in.name
    assert "DIFFERS FROM UPSTREAM: PostgreSQL 15" in (images.IMAGES_DIR / "postgres" / "Containerfile").read_text()


# --------------------------------------------------------------------------------------------- the stack


# ------------------------------------------------------------------------------------------- helpers


TRIGGERED = {"vyapar_sources", "vyapar_staging", "vyapar_intermediate"}


def _has_dags(api: Api) -> bool:
    return TRIGGERED <= {d["dag_id"] for d in api.get("/dags", limit=100)["dags"]}


def _mails(stack: Stack, pattern: str) -> list[dict]:
    """Messages in the mail catcher whose subject matches, read through its HTTP API (Mailpit's)."""
    listed = requests.get(f"{stack.mail_url}/api/v1/messages", timeout=10).json()["messages"]
    return [m for m in listed if re.search(pattern, m["Subject"])]


def _mail_text(stack: Stack, message_id: str) -> str:
    return requests.get(f"{stack.mail_url}/api/v1/message/{message_id}", timeout=10).json()["Text"]


def _record(figures: dict) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "timings.json"
    path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


WAREHOUSE_QUERY = """
import json, duckdb
con = duckdb.connect('/opt/airflow/data/warehouse/vyaparbazaar.duckdb', read_only=True)
built = {r[0] for r in con.execute('select order_id from staging.stg_orders').fetchall()}
landed = {r[0] for r in con.execute("select distinct cast(order_id as varchar) from read_parquet("
    "'/opt/airflow/data/landing/orders/*.parquet', union_by_name = true) where order_id is not null").fetchall()}
print(json.dumps({'built': len(built), 'landed': len(landed), 'missing': len(landed - built)}))
"""

ALERT_HISTORY = "select count(*) from alerts"  # the alert store's table (no prefix in compose)


def _warehouse(stack: Stack) -> dict:
    """Rows of the warehouse, read inside the container from the DuckDB file on its named volume."""
    out = stack.exec("airflow-scheduler", "python", "-c", WAREHOUSE_QUERY).stdout
    return json.loads(out.strip().splitlines()[-1])


def _alert_history(stack: Stack) -> int:
    """Alerts the store holds, read in the postgres container (the alert store's database)."""
    out = stack.exec("postgres", "psql", "-U", stack.values["POSTGRES_USER"], "-d", stack.values["VYAPAR_ALERTS_DB"],
                     "-tAc", ALERT_HISTORY).stdout  # fmt: skip
    return int(out.strip())


# ----------------------------------------------------------------------------------------------- the test


@pytest.fixture(scope="module")
def built(tools):
    """The stand-in base images (cached by content) and the project's image, built by podman-compose."""
    started = time.monotonic()
    per_image = images.ensure(log_dir=ARTIFACTS / "images")
    figures = {"base_images_seconds": round(time.monotonic() - started, 1),
               "base_images_built": {k: round(v, 1) for k, v in per_image.items()}}  # fmt: skip
    return figures


@pytest.fixture(scope="module")
def stack(built, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("containers")
    stack = Stack(workdir, env_values(SCALE))
    stack.figures = dict(built)
    started = time.monotonic()
    # podman-compose builds the Dockerfile as it is; this machine reaches PyPI only with the host's network and
    # CA bundle, which a build gets through podman's own arguments (never through the project's files).
    stack.compose("--podman-build-args", " ".join(images.BUILD_ARGS), "build", "airflow-init", timeout=1800)
    stack.figures["project_image_seconds"] = round(time.monotonic() - started, 1)
    try:
        yield stack
    finally:
        stack.save_logs("final", ARTIFACTS)
        shutil.copy(workdir / "compose.log", ARTIFACTS / "compose.log") if (workdir / "compose.log").exists() else None
        stack.down(volumes=True)
        left = subprocess.run(["podman", "volume", "ls", "-q", "--filter", f"label=io.podman.compose.project={stack.project}"],
                              capture_output=True, text=True, check=False).stdout.split()  # fmt: skip
        stack.figures["volumes_left_after_down_v"] = left
        _record(stack.figures)


@pytest.mark.timeout(2700)  # cold: base images (~8 min here) + the project image + the journey (~12 min)
def test_compose_stack_in_real_containers(stack):
    figures = stack.figures
    values = stack.values
    user, password = values["AIRFLOW_ADMIN_USERNAME"], values["AIRFLOW_ADMIN_PASSWORD"]

    # -- up: every service healthy, started in depends_on order
    started = time.monotonic()
    ready = stack.up()
    figures["up_until_healthy_seconds"] = round(time.monotonic() - started, 1)
    figures["healthy_at_seconds"] = {k: round(v, 1) for k, v in ready.items()}
    assert "init: done" in stack.logs("airflow-init"), stack.logs("airflow-init", 80)

    # -- the API wants a token; the admin login from .env gets one
    assert requests.get(f"{stack.api_url}/api/v2/dags", timeout=10).status_code == 401
    api = Api(stack.api_url, user, password)
    wait_for(lambda: _has_dags(api), 300, "the DAGs the test triggers")
    assert api.get("/importErrors")["total_entries"] == 0, api.get("/importErrors")
    health = requests.get(f"{stack.api_url}/api/v2/monitor/health", timeout=10).json()
    assert {health[k]["status"] for k in ("metadatabase", "scheduler", "triggerer", "dag_processor")} == {"healthy"}

    # -- the sources DAG lands the hour's batch; staging builds orders from it; rows in the warehouse volume
    started = time.monotonic()
    run = api.trigger("vyapar_sources", {})
    assert api.wait_run("vyapar_sources", run, timeout=900) == "success", api.task_states("vyapar_sources", run)
    figures["sources_trigger_to_success_seconds"] = round(time.monotonic() - started, 1)
    started = time.monotonic()
    run = api.trigger("vyapar_staging", {"full_refresh": False, "select": "stg_orders"})
    assert api.wait_run("vyapar_staging", run, timeout=900) == "success", api.task_states("vyapar_staging", run)
    figures["staging_trigger_to_success_seconds"] = round(time.monotonic() - started, 1)
    rows = _warehouse(stack)
    assert rows["built"] == rows["landed"] > 0 and rows["missing"] == 0, rows

    # -- a run fails (a selector that names no model: plan_selection fails at once, no retries; a dbt failure's
    # alerts, after its retries, are tests/alerting_e2e's); the alert email reaches the mail catcher
    started = time.monotonic()
    run = api.trigger("vyapar_staging", {"full_refresh": False, "select": "stg_orderz"})
    assert api.wait_run("vyapar_staging", run, timeout=300) == "failed", api.task_states("vyapar_staging", run)
    failed_at = time.monotonic()
    alert = wait_for(lambda: _mails(stack, r"vyapar_staging"), 300, "the alert email")[0]
    figures["failing_trigger_to_failed_seconds"] = round(failed_at - started, 1)
    figures["alert_email_after_run_failed_seconds"] = round(time.monotonic() - failed_at, 1)
    text = _mail_text(stack, alert["ID"])
    assert "stg_orderz" in text and "plan_selection" in text, text
    assert values["POSTGRES_PASSWORD"] not in text and values["AIRFLOW_ADMIN_PASSWORD"] not in text
    alerts_before = _alert_history(stack)
    assert alerts_before > 0

    # -- down, then up without -v: the data, the login and the alert history are kept
    stack.save_logs("first", ARTIFACTS)
    stack.down()
    started = time.monotonic()
    stack.up()
    figures["second_up_until_healthy_seconds"] = round(time.monotonic() - started, 1)
    init_log = stack.logs("airflow-init")
    assert "init: done" in init_log and "generating raw data" not in init_log and "first build" not in init_log, (
        init_log
    )
    api = Api(stack.api_url, user, password)  # the same login
    assert _warehouse(stack) == rows
    assert _alert_history(stack) >= alerts_before


UNFINISHED = ("running", "queued", "scheduled", "up_for_retry", "restarting", "deferred", "up_for_reschedule", None)


def test_scheduler_container_killed_mid_run_is_restarted_and_the_run_s_tasks_finish(stack):
    """The scheduler container's main process dies mid-run (a crash, not `podman stop`): the restart policy brings
    it back, it is healthy again, and every task of the run reaches a final state (the orphaned ones are reset by
    the scheduler's orphaned-task check: every 300 s by default, every 30 s in the test override)."""
    figures = stack.figures
    api = Api(stack.api_url, stack.values["AIRFLOW_ADMIN_USERNAME"], stack.values["AIRFLOW_ADMIN_PASSWORD"])
    wait_for(lambda: _has_dags(api), 300, "the DAGs the test triggers")
    run = api.trigger("vyapar_intermediate", {"full_refresh": False, "select": ""})
    stack.killed_run = run
    wait_for(lambda: "running" in api.task_states("vyapar_intermediate", run).values(), 600, "a running dbt task", 1)
    scheduler = stack.container("airflow-scheduler")
    pid = stack.inspect("airflow-scheduler")["State"]["Pid"]
    os.kill(pid, 9)  # the container's main process dies, as in a crash (not `podman stop`: restart policy applies)
    stack.killed_at = killed_at = time.monotonic()
    wait_for(lambda: stack.inspect("airflow-scheduler")["State"]["Pid"] not in (0, pid) and stack.running("airflow-scheduler"),
              60, "the restart policy to restart the scheduler", 1)  # fmt: skip
    figures["scheduler_restarted_by_policy_after_seconds"] = round(time.monotonic() - killed_at, 1)
    stack.wait_healthy("airflow-scheduler")
    assert scheduler == stack.container("airflow-scheduler")  # restarted, not recreated
    states = wait_for(lambda: (st := api.task_states("vyapar_intermediate", run)) and not [
        t for t, s in st.items() if s in UNFINISHED] and st, 900, "every task of the killed run to finish")  # fmt: skip
    figures["killed_run_tasks_finished_after_kill_seconds"] = round(time.monotonic() - killed_at, 1)
    assert "failed" not in states.values() or wait_for(
        lambda: _mails(stack, r"vyapar_intermediate"), 300, "the failure email"
    )


def test_the_killed_run_is_marked_finished_after_the_restart(stack):
    api = Api(stack.api_url, stack.values["AIRFLOW_ADMIN_USERNAME"], stack.values["AIRFLOW_ADMIN_PASSWORD"])
    run = getattr(stack, "killed_run", None)
    assert run, "the kill test did not trigger a run"
    state = wait_for(lambda: (s := api.state("vyapar_intermediate", run)) in ("success", "failed") and s, 120,
                      "the killed run to be marked finished")  # fmt: skip
    stack.figures["killed_run_final_state"] = state
    stack.figures["killed_run_finished_after_kill_seconds"] = round(time.monotonic() - stack.killed_at, 1)
    assert state == "success" or _mails(stack, r"vyapar_intermediate")
