"""`docker compose up`, checked without a container engine; the containers themselves run in test_containers.py.

Static: the compose file validates against the Compose specification's schema, the Dockerfile passes hadolint,
and every variable, path and port the compose file names exists; the init's preflight refuses placeholder
secrets. Dynamic: the `celery` profile, which the containers test does not start, runs as local processes with
the compose file's own commands and environment (tests/deployment/compose_standin.py) against this machine's
PostgreSQL (metadata, alerts and the warehouse) and Redis, a Slack stand-in and an SMTP server standing in for
Mailpit.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg2
import pytest
import requests
from cryptography.fernet import Fernet

from include.vyapar.pipeline.schedules import load_schedules
from tests.conftest import ARTIFACTS as ALL_ARTIFACTS
from tests.deployment.compose_standin import (
    COMPOSE_FILE,
    DOCKERFILE,
    REPO_ROOT,
    InterpolationError,
    StandInStack,
    active_services,
    dockerfile_facts,
    load_compose,
    read_env_file,
)
from tests.deployment.rest_api import Api, wait_for
from tests.fakes.smtp_server import FakeSmtp

# every DAG of the declaration, the watchers and the manual warehouse restore
_SCHEDULES = load_schedules()
ALL_DAGS = len(_SCHEDULES.all) + len(_SCHEDULES.watchers) + 1

ENV_EXAMPLE = REPO_ROOT / ".env.example"
ARTIFACTS = ALL_ARTIFACTS / "compose"
VENV_BIN = Path(sys.executable).parent


# ------------------------------------------------------------------------------------------ static checks


def test_compose_file_validates_against_the_compose_specification():
    proc = subprocess.run(
        [str(VENV_BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_passes_hadolint():
    proc = subprocess.run([str(VENV_BIN / "hadolint"), str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_variable_path_and_port_the_compose_file_names_exists():
    text = COMPOSE_FILE.read_text()
    example = read_env_file(ENV_EXAMPLE)
    # `$${HOSTNAME}` is the container's own variable, escaped for the shell; everything else comes from .env
    named = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text))
    assert named, "no variables found"
    # an optional knob with a default in the compose file may be documented as a commented example line
    documented = set(re.findall(r"(?m)^# ?([A-Z_][A-Z0-9_]*)=", ENV_EXAMPLE.read_text()))
    assert sorted(named - set(example) - documented) == []
    model = load_compose(example)
    image_env, copies = dockerfile_facts()
    assert {"/opt/airflow/dags", "/opt/airflow/dbt", "/opt/airflow/include", "/opt/airflow/plugins"} <= set(copies)
    for target, source in copies.items():
        assert source.exists(), f"Dockerfile COPY source {source} missing for {target}"
    every = active_services(model, {"celery"})
    for name, spec in every.items():
        if "build" in spec:
            assert (REPO_ROOT / spec["build"]).is_dir()
        for value in [*(spec.get("environment") or {}).values(), *(spec.get("command") or [])]:
            for path in re.findall(r"/opt/airflow/[\w./-]+", str(value)):
                top = "/".join(path.split("/")[:4])
                if top in copies:  # the project's own files
                    assert (copies[top] / path[len(top) + 1 :]).exists() or path.endswith(".json"), path
        for mount in spec.get("volumes") or []:
            volume = mount.split(":")[0]
            assert volume in model["volumes"], f"{name}: volume {volume} not declared"
        if spec.get("command") and spec["command"][:2] == ["python", "-m"]:
            module = spec["command"][2]
            module_path = REPO_ROOT / module.replace(".", "/")
            assert module_path.with_suffix(".py").exists() or (module_path / "__main__.py").exists(), module
        for dep in spec.get("depends_on") or {}:
            assert dep in model["services"], f"{name} depends on unknown service {dep}"
    ports = {name: spec.get("ports") for name, spec in every.items() if spec.get("ports")}
    assert ports == {"airflow-apiserver": ["8080:8080"], "mailpit": ["8025:8025"]}
    assert model["services"]["airflow-apiserver"]["healthcheck"]["test"][-1].startswith("http://localhost:8080/")
    # the alert links and the execution API address the ports the services listen on
    env = model["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"


def test_every_long_running_service_has_a_healthcheck_runs_unprivileged_and_waits_for_health():
    model = load_compose(read_env_file(ENV_EXAMPLE))
    services = active_services(model, {"celery"})
    assert set(services) >= {
        "postgres", "redis", "mailpit", "airflow-init", "airflow-apiserver", "airflow-scheduler",
        "airflow-dag-processor", "airflow-triggerer", "airflow-worker",
    }  # fmt: skip
    for name, spec in services.items():
        user = str(spec.get("user", ""))
        assert user and user.split(":")[0] not in ("", "0", "root"), f"{name} would run as root ({user!r})"
        if name == "airflow-init":
            assert spec["restart"] == "no"
            continue
        assert spec.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for dep, condition in (spec.get("depends_on") or {}).items():
            assert condition["condition"] in ("service_healthy", "service_completed_successfully"), (name, dep)
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        assert services[name]["user"] == "50000:0"  # the image's AIRFLOW_UID convention: any uid, group 0
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in COMPOSE_FILE.read_text()
    # one JWT secret and one Fernet key shared by every Airflow process
    airflow = [s for s in services.values() if "build" in s]
    assert len({s["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"] for s in airflow}) == 1
    assert len({s["environment"]["AIRFLOW__CORE__FERNET_KEY"] for s in airflow}) == 1


def test_no_secret_is_hard_coded_and_a_missing_one_stops_compose():
    text = COMPOSE_FILE.read_text()
    for var in ("POSTGRES_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_ADMIN_PASSWORD"):
        assert re.search(rf"\$\{{{var}:\?set {var} in \.env", text), f"{var} must be required (${{{var}:?...}})"
    assert "airflow:airflow" not in text and "FERNET_KEY: ''" not in text
    example = read_env_file(ENV_EXAMPLE)
    for var in ("POSTGRES_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_ADMIN_PASSWORD"):
        missing = {k: v for k, v in example.items() if k != var}
        with pytest.raises(InterpolationError, match=rf"{var} is missing a value: set {var} in \.env"):
            load_compose(missing)
    assert "ENV" not in [line.split()[0] for line in DOCKERFILE.read_text().splitlines() if "SECRET" in line or "PASSWORD" in line]


def test_init_refuses_placeholders_and_known_defaults_naming_each_variable(tmp_path):
    """.env.example copied as is, or with the quick-start's airflow/airflow: airflow-init exits with a message."""

    def preflight(dotenv: dict[str, str]) -> subprocess.CompletedProcess:
        spec = load_compose(dotenv)["services"]["airflow-init"]
        env = {"PATH": str(VENV_BIN), "PYTHONPATH": str(REPO_ROOT), "HOME": str(tmp_path)}
        env.update({k: str(v) for k, v in spec["environment"].items()})
        return subprocess.run([sys.executable, "-m", "include.vyapar.deploy", "preflight"], env=env, cwd=REPO_ROOT,
                              capture_output=True, text=True, check=False)  # fmt: skip

    as_shipped = preflight(read_env_file(ENV_EXAMPLE))
    assert as_shipped.returncode != 0
    for var in ("AIRFLOW_ADMIN_PASSWORD", "POSTGRES_PASSWORD", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY"):
        assert var in as_shipped.stderr, as_shipped.stderr
    assert "refuses to start" in as_shipped.stderr
    quick_start = {**_fit_env(tmp_path), "POSTGRES_PASSWORD": "airflow", "AIRFLOW_ADMIN_PASSWORD": "airflow"}
    refused = preflight(quick_start)
    assert refused.returncode != 0 and "well-known default" in refused.stderr
    assert "airflow" not in refused.stdout  # the values themselves are never echoed
    celery_on_duckdb = preflight({**_fit_env(tmp_path), "AIRFLOW_EXECUTOR": "CeleryExecutor"})
    assert celery_on_duckdb.returncode != 0 and "cannot share one DuckDB file" in celery_on_duckdb.stderr
    fit = preflight(_fit_env(tmp_path))
    assert fit.returncode == 0, fit.stderr


def _fit_env(tmp_path: Path) -> dict[str, str]:
    """.env.example with every secret generated as the README says."""
    return {
        **read_env_file(ENV_EXAMPLE),
        "AIRFLOW_ADMIN_PASSWORD": secrets.token_urlsafe(18),
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        "AIRFLOW_FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW_JWT_SECRET": secrets.token_hex(32),
    }


# --------------------------------------------------------------------------------------- the stand-in stack


def _write_env(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def _create_database(name: str) -> None:
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'drop database if exists "{name}" with (force)')
        cur.execute(f'create database "{name}"')
    conn.close()


def _drop_databases(*names: str) -> None:
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        for name in names:
            cur.execute(f'drop database if exists "{name}" with (force)')
    conn.close()


def _stack_env(tmp_path: Path, smtp: FakeSmtp, **overrides: str) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {
        **_fit_env(tmp_path),
        "POSTGRES_USER": "postgres",  # this machine's server (trust auth) stands in for the postgres service
        "POSTGRES_DB": f"vyapar_standin_{suffix}",
        "VYAPAR_ALERTS_DB": f"vyapar_standin_alerts_{suffix}",
        "VYAPAR_WAREHOUSE_DB": f"vyapar_standin_wh_{suffix}",
        "SMTP_HOST": "mailpit",
        "SMTP_PORT": str(smtp.port),  # the test's SMTP server stands in for Mailpit
        "VYAPAR_SCALE": "0.05",
        # scheduled runs of 14 DAGs would compete with the test's triggers; a user's default is unpaused
        "AIRFLOW_DAGS_PAUSED_AT_CREATION": "True",
        **overrides,
    }


@pytest.fixture(scope="module")
def smtp():
    server = FakeSmtp().start()
    yield server
    server.stop()


def _api(stack: StandInStack) -> Api:
    return Api(stack.api_url, stack.values["AIRFLOW_ADMIN_USERNAME"], stack.values["AIRFLOW_ADMIN_PASSWORD"])


def _emails(smtp: FakeSmtp, pattern: str) -> list:
    return [m for m in list(smtp.messages) if re.search(pattern, str(m["Subject"]))]


def _record(name: str, figures: dict) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "timings.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[name] = figures
    path.write_text(json.dumps(data, indent=2))


# ------------------------------------------------------------------------ the celery profile (past one machine)


@pytest.fixture(scope="module")
def celery_stack(tmp_path_factory, smtp):
    import redis

    from tests.fakes.slack_server import FakeSlack

    slack = FakeSlack().start()
    root = tmp_path_factory.mktemp("compose-celery")
    values = _stack_env(
        root, smtp,
        COMPOSE_PROFILES="celery", AIRFLOW_EXECUTOR="CeleryExecutor", VYAPAR_DBT_TARGET="postgres",
        SLACK_BOT_TOKEN=slack.token, SLACK_API_URL=slack.api_url,  # Slack configured: the test's Slack Web API
    )  # fmt: skip
    _create_database(values["POSTGRES_DB"])
    redis.Redis(host="127.0.0.1", port=6379, db=0).flushdb()  # no task message left by an earlier stack
    stack = StandInStack(root=root, env_file=_write_env(root / ".env", values))
    assert "airflow-worker" in stack.services
    started = time.monotonic()
    try:
        ready = stack.up(timeout=900)
        stack.timings = {"api_healthy_seconds": ready["airflow-apiserver"], "all_healthy_seconds": time.monotonic() - started}
        stack.values, stack.slack = values, slack
        yield stack
    finally:
        stack.stop()
        slack.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for name, service in stack.services.items():
            if service.log_path.exists():
                (ARTIFACTS / f"celery-{name}.log").write_text(service.log_path.read_text(errors="replace"))
        _drop_databases(values["POSTGRES_DB"], values["VYAPAR_ALERTS_DB"], values["VYAPAR_WAREHOUSE_DB"])


@pytest.mark.slow
def test_celery_profile_runs_dbt_on_the_postgres_warehouse_and_alerts_slack_and_email(celery_stack, smtp):
    api = _api(celery_stack)
    wait_for(lambda: len(api.get("/dags", tags="vyaparbazaar", limit=100)["dags"]) == ALL_DAGS, 180, "the DAGs")
    health = requests.get(f"{celery_stack.api_url}/api/v2/monitor/health", timeout=10).json()
    assert health["scheduler"]["status"] == "healthy"
    pools = {p["name"]: p["slots"] for p in api.get("/pools")["pools"]}
    assert pools.get("postgres_warehouse", 0) > 1, pools

    # The sources DAG lands the hour's batch and loads it into the warehouse's raw schema (on PostgreSQL the
    # raw tables are loaded, not read in place); its tests and freshness checks run on parallel workers.
    started = time.monotonic()
    landed = api.trigger("vyapar_sources", {})
    assert api.wait_run("vyapar_sources", landed, timeout=900) == "success", api.task_states("vyapar_sources", landed)
    newest = sorted((Path(celery_stack.host_path("/opt/airflow/data/landing")) / "_batches").glob("*.parquet"))[-1].stem
    built = api.trigger("vyapar_staging", {"full_refresh": False, "select": "stg_orders"})
    assert api.wait_run("vyapar_staging", built, timeout=600) == "success", api.task_states("vyapar_staging", built)
    run_seconds = time.monotonic() - started
    tis = api.get(f"/dags/vyapar_staging/dagRuns/{built}/taskInstances", limit=200)["task_instances"]
    assert {ti["executor"] or "CeleryExecutor" for ti in tis if ti["state"] == "success"} <= {"CeleryExecutor"}
    assert any(ti["hostname"] for ti in tis if ti["state"] == "success")  # ran on a Celery worker

    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=celery_stack.values["VYAPAR_WAREHOUSE_DB"])
    with conn, conn.cursor() as cur:
        # the sources run loaded the new batch into raw (its ledger row is there even for a quiet hour) ...
        cur.execute("select count(*) from raw._batches where batch_id = %s", (newest,))
        ledger_rows = cur.fetchone()[0]
        # ... and staging holds every order raw holds (one row per order: its latest version)
        cur.execute("select (select count(*) from staging.stg_orders), "
                    "(select count(distinct order_id) from raw.orders where order_id is not null)")  # fmt: skip
        built, landed = cur.fetchone()
        cur.execute("select count(*) from marts.mart_daily_sales")
        mart_rows = cur.fetchone()[0]
    conn.close()
    assert ledger_rows > 0, f"batch {newest} not loaded into raw._batches"
    assert built == landed > 0 and mart_rows > 0, (built, landed, mart_rows)

    before = len(smtp.messages)
    failed = api.trigger("vyapar_marts", {"full_refresh": False, "select": "mart_no_such_model"})
    assert api.wait_run("vyapar_marts", failed, timeout=600) == "failed"
    wait_for(lambda: [m for m in celery_stack.slack.messages if "vyapar_marts" in m.text], 180, "the Slack alert")
    wait_for(lambda: len(smtp.messages) > before and _emails(smtp, r"vyapar_marts"), 180, "the alert email")
    _record("celery", {**celery_stack.timings, "sources_then_staging_seconds": run_seconds})
