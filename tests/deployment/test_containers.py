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
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from cryptography.fernet import Fernet

from tests.conftest import ARTIFACTS as ALL_ARTIFACTS
from tests.deployment.images import build as images
from tests.deployment.rest_api import Api, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ALL_ARTIFACTS / "containers"
OVERRIDE = Path(__file__).parent / "images" / "compose.test-override.yaml"
PODMAN_COMPOSE = shutil.which("podman-compose", path=str(Path(os.sys.executable).parent)) or "podman-compose"
CONTAINERS_CONF = Path("/etc/containers/containers.conf")
SCALE = "0.05"  # raw data of the first start: 5k clickstream events, enough for every model to have rows

pytestmark = pytest.mark.slow


def _needs() -> list[str]:
    missing = []
    if os.geteuid() != 0:
        missing.append("root (podman runs the stack as root here)")
    for tool in ("podman", "mmdebstrap"):
        if shutil.which(tool) is None:
            missing.append(f"{tool} (apt-get install {tool}; .ci/run installs it)")
    if not Path(PODMAN_COMPOSE).exists() and shutil.which("podman-compose") is None:
        missing.append("podman-compose (requirements-dev.txt)")
    conf = CONTAINERS_CONF.read_text() if CONTAINERS_CONF.exists() else ""
    if "default_ulimits" not in conf or not re.search(r'^runtime\s*=\s*"runc"', conf, re.M):
        missing.append(f"{CONTAINERS_CONF} with default_ulimits and runtime = \"runc\" (without them containers "
                       "fail to set rlimits, and crun refuses this machine's hybrid cgroups; .ci/run writes it)")  # fmt: skip
    return missing


@pytest.fixture(scope="module")
def tools():
    missing = _needs()
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clean_env() -> dict[str, str]:
    """What a user's shell gives podman-compose: no AIRFLOW_*/VYAPAR_* of this test session (os.environ would
    win over .env in the compose file's interpolation)."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TERM", "TMPDIR", "XDG_RUNTIME_DIR")
    return {k: v for k, v in os.environ.items() if k in keep}


class Stack:
    """One compose project of docker-compose.yaml (+ the test-only override), driven through podman-compose."""

    def __init__(self, workdir: Path, values: dict[str, str]) -> None:
        self.workdir = workdir
        self.values = values
        self.project = f"vyapartest{uuid.uuid4().hex[:6]}"
        self.env_file = workdir / ".env"
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
        self.env_file.chmod(0o600)
        self.api_url = f"http://127.0.0.1:{values['AIRFLOW_PORT']}"
        self.mail_url = f"http://127.0.0.1:{values['MAILPIT_PORT']}"
        self.model = yaml.safe_load(self.compose("config", timeout=120).stdout)
        profiles = {p for p in values.get("COMPOSE_PROFILES", "").split(",") if p}
        self.services = {
            name: spec for name, spec in self.model["services"].items()
            if not spec.get("profiles") or set(spec["profiles"]) & profiles
        }  # fmt: skip

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        argv = [PODMAN_COMPOSE, "--project-name", self.project, "--env-file", str(self.env_file),
                "--file", str(REPO_ROOT / "docker-compose.yaml"), "--file", str(OVERRIDE), *args]  # fmt: skip
        proc = subprocess.run(argv, cwd=REPO_ROOT, env=_clean_env(), capture_output=True, text=True,
                              timeout=timeout, check=False)  # fmt: skip
        with open(self.workdir / "compose.log", "a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(argv[5:])}\n{proc.stdout}{proc.stderr}\n")
        if check and proc.returncode != 0:
            raise AssertionError(f"podman-compose {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
        return proc

    # -- containers
    def container(self, service: str) -> str:
        proc = subprocess.run(
            ["podman", "ps", "-a", "--filter", f"label=io.podman.compose.project={self.project}",
             "--filter", f"label=com.docker.compose.service={service}", "--format", "{{.Names}}"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        names = proc.stdout.split()
        assert names, f"no container for service {service}"
        return names[0]

    def inspect(self, service: str) -> dict:
        out = subprocess.run(["podman", "inspect", self.container(service)], capture_output=True, text=True, check=True)
        return json.loads(out.stdout)[0]

    def logs(self, service: str, tail: int | None = None) -> str:
        argv = ["podman", "logs", *(["--tail", str(tail)] if tail else []), self.container(service)]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        return proc.stdout + proc.stderr

    def exec(
        self, service: str, *argv: str, user: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess:
        cmd = ["podman", "exec", *(["--user", user] if user else []), self.container(service), *argv]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} in {service} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
        return proc

    def healthcheck(self, service: str) -> bool:
        proc = subprocess.run(["podman", "healthcheck", "run", self.container(service)], capture_output=True,
                              text=True, timeout=120, check=False)  # fmt: skip
        return proc.returncode == 0

    def running(self, service: str) -> bool:
        return self.inspect(service)["State"]["Status"] == "running"

    # -- Compose's own waiting, which podman-compose does not do
    def budget(self, service: str) -> float:
        """Seconds Compose would give a healthcheck before calling the container unhealthy."""
        check = self.services[service]["healthcheck"]

        def seconds(value, default: float) -> float:
            if value is None:
                return default
            match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", str(value))
            number, unit = float(match.group(1)), match.group(2) or "s"
            return number / 1000 if unit == "ms" else number * 60 if unit == "m" else number

        return seconds(check.get("start_period"), 0) + (seconds(check.get("interval"), 30) + seconds(
            check.get("timeout"), 30)) * int(check.get("retries", 3))  # fmt: skip

    def wait_healthy(self, service: str, timeout: float | None = None) -> float:
        """Run the service's own healthcheck until it passes (the container must keep running); seconds waited."""
        started = time.monotonic()
        timeout = timeout or self.budget(service)
        while not self.healthcheck(service):
            state = self.inspect(service)["State"]
            if state["Status"] in ("exited", "stopped") and self.services[service].get("restart") in (None, "no"):
                raise AssertionError(f"{service} exited ({state.get('ExitCode')}):\n{self.logs(service, 80)}")
            if time.monotonic() - started > timeout:
                raise AssertionError(f"{service} not healthy within {timeout:.0f} s (Compose's budget from its "
                                     f"healthcheck: {self.budget(service):.0f} s):\n{self.logs(service, 80)}")  # fmt: skip
            time.sleep(2)
        return time.monotonic() - started

    def wait_completed(self, service: str, timeout: float = 900) -> None:
        proc = subprocess.run(["podman", "wait", self.container(service)], capture_output=True, text=True,
                              timeout=timeout, check=False)  # fmt: skip
        code = proc.stdout.strip()
        assert code == "0", f"{service} exited {code}:\n{self.logs(service, 120)}"

    def start_order(self) -> list[str]:
        order: list[str] = []

        def visit(name: str) -> None:
            if name in order or name not in self.services:
                return
            for dep in self.services[name].get("depends_on") or {}:
                visit(dep)
            order.append(name)

        for name in self.services:
            visit(name)
        return order

    def up(self) -> dict[str, float]:
        """`up -d`, one service at a time in depends_on order, each once its conditions hold, as Compose does;
        seconds from the start until each service was healthy (or, for the one-shot init, done)."""
        started = time.monotonic()
        ready: dict[str, float] = {}
        for name in self.start_order():
            for dep, spec in (self.services[name].get("depends_on") or {}).items():
                if dep not in self.services:
                    assert spec.get("required") is False, f"{name} depends on {dep}, which is not started"
                    continue
                condition = spec.get("condition", "service_started")
                if condition == "service_healthy" and dep not in ready:
                    self.wait_healthy(dep)
                    ready[dep] = time.monotonic() - started
                elif condition == "service_completed_successfully" and dep not in ready:
                    self.wait_completed(dep)
                    ready[dep] = time.monotonic() - started
            self.compose("up", "-d", "--no-deps", "--no-build", name)
        for name, spec in self.services.items():
            if spec.get("healthcheck") and name not in ready:
                self.wait_healthy(name)
                ready[name] = time.monotonic() - started
        return ready

    def down(self, volumes: bool = False) -> None:
        self.compose("down", *(["--volumes"] if volumes else []), timeout=300)

    def save_logs(self, tag: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for name in self.services:
            try:
                (ARTIFACTS / f"{tag}-{name}.log").write_text(self.logs(name), encoding="utf-8")
            except AssertionError:
                pass  # not created


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


def _values() -> dict[str, str]:
    example = {}
    for line in (REPO_ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            example[key.strip()] = value.strip()
    return {
        **example,
        "AIRFLOW_ADMIN_PASSWORD": secrets.token_urlsafe(18),
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        "AIRFLOW_FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW_JWT_SECRET": secrets.token_hex(32),
        # several stacks may share this machine: the published ports are free ones
        "AIRFLOW_PORT": str(_free_port()),
        "MAILPIT_PORT": str(_free_port()),
        "VYAPAR_SCALE": SCALE,
        # scheduled runs of 14 DAGs would compete with the test's triggers (a user's default is unpaused)
        "AIRFLOW_DAGS_PAUSED_AT_CREATION": "True",
    }


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
    stack = Stack(workdir, _values())
    stack.figures = dict(built)
    started = time.monotonic()
    # podman-compose builds the Dockerfile as it is; this machine reaches PyPI only with the host's network and
    # CA bundle, which a build gets through podman's own arguments (never through the project's files).
    stack.compose("--podman-build-args", " ".join(images.BUILD_ARGS), "build", "airflow-init", timeout=1800)
    stack.figures["project_image_seconds"] = round(time.monotonic() - started, 1)
    try:
        yield stack
    finally:
        stack.save_logs("final")
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
    stack.save_logs("first")
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
