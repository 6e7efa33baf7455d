"""The compose stack in real containers, driven through podman-compose: shared by
tests/deployment/test_containers.py and the bench's run on the compose stack (bench/compose_run.py).

Two limits of this machine's podman 4.3 are worked around the way Compose itself would behave: healthchecks are
run with `podman healthcheck run` (no systemd timers here), and services are started one by one in depends_on
order, each after its conditions hold (podman-compose ignores `service_healthy`)."""

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

import yaml
from cryptography.fernet import Fernet

REPO_ROOT = Path(__file__).resolve().parents[2]
OVERRIDE = Path(__file__).parent / "images" / "compose.test-override.yaml"
PODMAN_COMPOSE = shutil.which("podman-compose", path=str(Path(os.sys.executable).parent)) or "podman-compose"
CONTAINERS_CONF = Path("/etc/containers/containers.conf")


def missing_tools() -> list[str]:
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env() -> dict[str, str]:
    """What a user's shell gives podman-compose: no AIRFLOW_*/VYAPAR_* of this test session (os.environ would
    win over .env in the compose file's interpolation)."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TERM", "TMPDIR", "XDG_RUNTIME_DIR")
    return {k: v for k, v in os.environ.items() if k in keep}


class Stack:
    """One compose project of docker-compose.yaml (+ the test-only override and any `overrides`), driven through
    podman-compose."""

    def __init__(self, workdir: Path, values: dict[str, str], overrides: tuple[Path, ...] = (),
                 prefix: str = "vyapartest") -> None:  # fmt: skip
        self.workdir = workdir
        self.values = values
        self.overrides = (OVERRIDE, *overrides)
        self.project = f"{prefix}{uuid.uuid4().hex[:6]}"
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
                "--file", str(REPO_ROOT / "docker-compose.yaml"),
                *(arg for path in self.overrides for arg in ("--file", str(path))), *args]  # fmt: skip
        proc = subprocess.run(argv, cwd=REPO_ROOT, env=clean_env(), capture_output=True, text=True,
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

    def save_logs(self, tag: str, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in self.services:
            try:
                (folder / f"{tag}-{name}.log").write_text(self.logs(name), encoding="utf-8")
            except AssertionError:
                pass  # not created


def env_values(scale: str, **extra: str) -> dict[str, str]:
    """A `.env` as a user writes it from .env.example: fresh secrets, free ports, DAGs paused at creation."""
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
        "AIRFLOW_PORT": str(free_port()),
        "MAILPIT_PORT": str(free_port()),
        "VYAPAR_SCALE": scale,
        # scheduled runs of 14 DAGs would compete with the test's triggers (a user's default is unpaused)
        "AIRFLOW_DAGS_PAUSED_AT_CREATION": "True",
        **extra,
    }
