"""A stand-in for `docker compose up` on a machine without a Docker engine.

It reads docker-compose.yaml and the Dockerfile as they are, interpolates them with a `.env` file the way
Compose does, and runs each service built from our Dockerfile as local processes: the service's own command
with the service's own environment. What Docker would provide is mapped, and only that:

- service host names -> 127.0.0.1 (PostgreSQL and Redis are the machine's own servers; Mailpit is an SMTP
  server the test runs); published/listening ports -> free local ports (several stacks may share a machine);
- container paths: what the Dockerfile COPYs comes from this checkout; everything else under the image's
  /opt/airflow (named volumes included) lives under one temporary root, shared by the services as the
  volumes are;
- healthchecks: `curl` tests are polled over HTTP, `CMD-SHELL` tests run as shell commands.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yaml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
IMAGE_HOME = "/opt/airflow"  # AIRFLOW_HOME and the project root in the image
AIRFLOW_SUBCOMMANDS = {"api-server", "scheduler", "dag-processor", "triggerer", "celery"}
# service -> the local stand-in's host (None: a service our Dockerfile builds, run here as processes)
EXTERNAL_SERVICES = {"postgres": "127.0.0.1", "redis": "127.0.0.1", "mailpit": "127.0.0.1"}


class InterpolationError(ValueError):
    """`${VAR:?message}` with VAR unset: Compose refuses to start with this message."""


_URL = re.compile(r"(?P<scheme>[a-z][\w+.-]*://)(?P<userinfo>[^@/\s]*@)?(?P<host>[\w.-]+)(?::(?P<port>\d+))?")
_VAR = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$", re.S)


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable syntax: $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err},
    ${VAR:+replacement}, ${VAR+replacement}; `$$` is a literal `$`. Defaults may hold variables."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        if match.group("bare"):
            return env.get(match.group("bare"), "")
        parts = _BRACED.match(match.group("braced"))
        if not parts:
            raise InterpolationError(f"invalid interpolation format: {match.group(0)!r}")
        name, op, arg = parts.group("name"), parts.group("op"), parts.group("arg") or ""
        is_set = name in env
        is_nonempty = bool(env.get(name))
        present = is_nonempty if op and op.startswith(":") else is_set
        if op in (":-", "-"):
            return env[name] if present else interpolate(arg, env)
        if op in (":?", "?"):
            if not present:
                raise InterpolationError(f"required variable {name} is missing a value: {arg}")
            return env[name]
        if op in (":+", "+"):
            return interpolate(arg, env) if present else ""
        return env.get(name, "")

    return _VAR.sub(replace, value)


def _walk(node, env: dict[str, str]):
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_walk(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _walk(value, env) for key, value in node.items()}
    return node


def read_env_file(path: Path) -> dict[str, str]:
    """A Compose `.env`: KEY=VALUE lines, `#` comments, optional quotes."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if value[:1] in ("'", '"') and value[-1:] == value[:1]:
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load_compose(env: dict[str, str], path: Path = COMPOSE_FILE) -> dict:
    """The compose model after YAML anchors/merge keys and interpolation (x- extension keys dropped)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return _walk({k: v for k, v in raw.items() if not k.startswith("x-")}, env)


def active_services(model: dict, profiles: set[str]) -> dict[str, dict]:
    return {
        name: spec for name, spec in model["services"].items()
        if not spec.get("profiles") or set(spec["profiles"]) & profiles
    }  # fmt: skip


def dockerfile_facts(path: Path = DOCKERFILE) -> tuple[dict[str, str], dict[str, Path]]:
    """The image's ENV values and its COPY targets (container path -> source in this checkout)."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    env: dict[str, str] = {}
    copies: dict[str, Path] = {}
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] == "ENV":
            env.update(word.split("=", 1) for word in words[1:] if "=" in word)
        elif words[0] == "COPY":
            args = [w for w in words[1:] if not w.startswith("--")]
            copies[args[-1].rstrip("/")] = REPO_ROOT / args[0].rstrip("/")
    return env, copies


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict[str, str]
    healthcheck: dict | None
    depends_on: dict[str, dict]
    log_path: Path
    process: subprocess.Popen | None = None
    log: object = None


@dataclass
class StandInStack:
    """The compose services built from our Dockerfile, as local processes; see the module docstring."""

    root: Path
    env_file: Path
    profiles: set[str] = field(default_factory=set)
    extra_env: dict[str, str] = field(default_factory=dict)  # only for the test's own fakes (ports, timing)

    def __post_init__(self) -> None:
        self.dotenv = read_env_file(self.env_file)
        self.profiles |= {p for p in self.dotenv.get("COMPOSE_PROFILES", "").split(",") if p}
        self.model = load_compose(self.dotenv)
        self.services_spec = active_services(self.model, self.profiles)
        self.image_env, self.copies = dockerfile_facts()
        self.api_port = free_port()
        self.ports = {  # (host, container port) as addressed inside the compose network -> local address
            ("airflow-apiserver", 8080): ("127.0.0.1", self.api_port),
            ("localhost", 8080): ("127.0.0.1", self.api_port),
        }
        self.services: dict[str, Service] = {}
        for name, spec in self.services_spec.items():
            if "build" in spec:
                self.services[name] = self._service(name, spec)

    # -- mapping container -> local
    def host_path(self, container_path: str) -> str:
        for target, source in sorted(self.copies.items(), key=lambda kv: -len(kv[0])):
            if container_path == target or container_path.startswith(target + "/"):
                return str(source) + container_path[len(target) :]
        if container_path == IMAGE_HOME:
            return str(self.root / "opt_airflow")
        if container_path.startswith(IMAGE_HOME + "/"):
            return str(self.root / "opt_airflow" / container_path[len(IMAGE_HOME) + 1 :])
        return container_path

    def map_value(self, value: str, key: str = "") -> str:
        def url(match: re.Match) -> str:
            host, port = match.group("host"), int(match.group("port") or 0)
            if (host, port) in self.ports:
                host, port = self.ports[(host, port)]
            host = EXTERNAL_SERVICES.get(host, host)
            return f"{match.group('scheme')}{match.group('userinfo') or ''}{host}{f':{port}' if port else ''}"

        value = _URL.sub(url, value)
        if key.endswith("_HOST") and value in EXTERNAL_SERVICES:  # a bare host name (SMTP_HOST=mailpit)
            value = EXTERNAL_SERVICES[value]
        return re.sub(r"(?<![\w.])/opt/airflow(?:/[\w./-]*)?", lambda m: self.host_path(m.group(0)), value)

    def _service(self, name: str, spec: dict) -> Service:
        image_env = {k: self.map_value(v) for k, v in self.image_env.items()}
        image_env["PYTHONPATH"] = str(REPO_ROOT)  # the image's project root is this checkout
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "VYAPAR_"))},
            **image_env,
            "AIRFLOW_HOME": self.host_path(IMAGE_HOME),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            **{k: self.map_value(str(v), k) for k, v in (spec.get("environment") or {}).items()},
            # what Docker isolates and a shared machine must not: each process its own listening ports
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(self._port(("localhost", 8974))),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            **self.extra_env,
        }
        command = spec.get("command") or []
        argv = shlex.split(command) if isinstance(command, str) else list(command)
        if argv and argv[0] in AIRFLOW_SUBCOMMANDS:
            argv = ["airflow", *argv]
        elif argv and argv[0] == "python":
            argv[0] = sys.executable
        depends = spec.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {dep: {"condition": "service_started"} for dep in depends}
        return Service(name, argv, env, spec.get("healthcheck"), depends, self.root / "logs" / f"{name}.log")

    def _port(self, key: tuple[str, int]) -> int:
        if key not in self.ports:
            self.ports[key] = ("127.0.0.1", free_port())
        return self.ports[key][1]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    # -- lifecycle
    def start_order(self) -> list[str]:
        order: list[str] = []

        def visit(name: str, seen: tuple[str, ...] = ()) -> None:
            if name in order or name not in self.services:
                return
            if name in seen:
                raise ValueError(f"depends_on cycle: {' -> '.join((*seen, name))}")
            for dep in self.services[name].depends_on:
                visit(dep, (*seen, name))
            order.append(name)

        for name in self.services:
            visit(name)
        return order

    def start(self, name: str) -> None:
        service = self.services[name]
        service.log_path.parent.mkdir(parents=True, exist_ok=True)
        Path(service.env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
        service.log = open(service.log_path, "ab")  # noqa: SIM115 -- closed in stop()
        service.process = subprocess.Popen(
            service.argv, env=service.env, cwd=REPO_ROOT, stdout=service.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def wait_dependencies(self, name: str, timeout: float) -> None:
        for dep, spec in self.services[name].depends_on.items():
            if dep not in self.services:
                continue  # a stand-in server of this machine (postgres, redis, mailpit), up before the test
            condition = (spec or {}).get("condition", "service_started")
            if condition == "service_completed_successfully":
                self.wait_exit(dep, timeout)
            elif condition == "service_healthy":
                self.wait_healthy(dep, timeout)

    def up(self, timeout: float = 300.0) -> dict[str, float]:
        """Start every service in dependency order, honouring the depends_on conditions; seconds to healthy."""
        started = time.monotonic()
        became_ready: dict[str, float] = {}
        for name in self.start_order():
            self.wait_dependencies(name, timeout)
            self.start(name)
        for name, service in self.services.items():
            if service.healthcheck:
                self.wait_healthy(name, timeout)
                became_ready[name] = time.monotonic() - started
        return became_ready

    def wait_exit(self, name: str, timeout: float) -> None:
        service = self.services[name]
        try:
            code = service.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{name} did not finish within {timeout:.0f} s:\n{self.tail(name)}") from None
        if code != 0:
            raise AssertionError(f"{name} exited with {code}:\n{self.tail(name)}")

    def healthy(self, name: str) -> bool:
        service = self.services[name]
        test = service.healthcheck["test"]
        kind, args = test[0], test[1:]
        if kind == "CMD" and args[0] == "curl":
            url = self.map_value(next(a for a in args if "://" in a))
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    return response.status == 200
            except OSError:
                return False
        if kind == "CMD-SHELL":
            # $$ in compose is a literal $; the container's HOSTNAME is what its job rows record
            command = args[0].replace("$${", "${").replace("$$", "$")
            check_env = {**service.env, "HOSTNAME": _airflow_hostname()}
            proc = subprocess.run(["bash", "-c", command], env=check_env, capture_output=True, timeout=60, check=False)
            return proc.returncode == 0
        raise ValueError(f"{name}: healthcheck form not handled by the stand-in: {test}")

    def wait_healthy(self, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        interval = 1.0
        while not self.healthy(name):
            process = self.services[name].process
            if process is not None and process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n{self.tail(name)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} not healthy within {timeout:.0f} s:\n{self.tail(name)}")
            time.sleep(interval)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.services[name].process
        os.killpg(process.pid, sig)
        process.wait(timeout=60)

    def stop(self) -> None:
        for name in reversed(self.start_order()):
            service = self.services[name]
            if service.process and service.process.poll() is None:
                try:
                    os.killpg(service.process.pid, signal.SIGTERM)
                    service.process.wait(timeout=30)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(service.process.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            if service.log:
                service.log.close()

    def tail(self, name: str, lines: int = 60) -> str:
        path = self.services[name].log_path
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _airflow_hostname() -> str:
    """The hostname Airflow records for its jobs (what `airflow jobs check --hostname` compares)."""
    from airflow.utils.net import get_hostname

    return get_hostname()
