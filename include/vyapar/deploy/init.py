"""The compose stack's one-shot init (`python -m include.vyapar.deploy init`) and its secret checks: `preflight`
refuses missing or well-known secrets, naming never printing them; `init` migrates, creates the side databases, writes
the login, pools and alert connections, and lands the first data and build, idempotently (it runs on every start).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from include.vyapar import settings
from include.vyapar.alerting.config import DEFAULT_SLACK_CONN, DEFAULT_SLACK_WEBHOOK_CONN

# Values that must never guard a real deployment: quick-start defaults and .env.example's placeholders.
KNOWN_DEFAULTS = frozenset({
    "", "airflow", "admin", "password", "postgres", "changeme", "change-me", "secret", "example", "test",
})  # fmt: skip
PLACEHOLDER_MARK = "change-me"  # every secret in .env.example contains it
# A random secret of the minimum length has far more distinct characters (bytes) than these.
MIN_DISTINCT_CHARACTERS = 6
MIN_DISTINCT_BYTES = 8
# The JWT secret is an HS512 key (Airflow's algorithm for a shared secret): PyJWT warns below 64 bytes.
MIN_SECRET_LENGTH = {"AIRFLOW_ADMIN_PASSWORD": 12, "POSTGRES_PASSWORD": 12, "AIRFLOW__API_AUTH__JWT_SECRET": 64}
GENERATE_HINT = {
    "AIRFLOW__CORE__FERNET_KEY": "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'",
    "AIRFLOW__API_AUTH__JWT_SECRET": "openssl rand -hex 32",
    "AIRFLOW_ADMIN_PASSWORD": "openssl rand -base64 18",
    "POSTGRES_PASSWORD": "openssl rand -hex 16",
}


class PreflightError(SystemExit):
    """The stack must not start: the message names every variable to fix and how."""


@dataclass(frozen=True)
class Problem:
    variable: str
    why: str

    def __str__(self) -> str:
        hint = GENERATE_HINT.get(self.variable)
        return f"  {self.variable}: {self.why}" + (f" (generate one: {hint})" if hint else "")


def secret_problems(env: Mapping[str, str]) -> list[Problem]:
    """What is wrong with the stack's secrets, one entry per variable (empty when all are fit to use).

    Each message names the variable and why, never the value."""
    problems: list[Problem] = []
    for var in ("AIRFLOW_ADMIN_PASSWORD", "POSTGRES_PASSWORD", "AIRFLOW__API_AUTH__JWT_SECRET"):
        value = env.get(var, "")
        why = _weak_secret(value, MIN_SECRET_LENGTH[var])
        if why:
            problems.append(Problem(var, why))
    fernet = env.get("AIRFLOW__CORE__FERNET_KEY", "")
    if not fernet.strip():
        problems.append(Problem("AIRFLOW__CORE__FERNET_KEY", "missing or empty (connections would be stored unencrypted)"))
    else:
        why = _weak_fernet_keys(fernet)
        if why:
            problems.append(Problem("AIRFLOW__CORE__FERNET_KEY", why))
    sql = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    if sql and urlsplit(sql).password in KNOWN_DEFAULTS - {""}:
        problems.append(Problem("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "uses a well-known database password"))
    return problems


def _weak_secret(value: str, min_length: int) -> str | None:
    """Why `value` cannot guard a deployment, or None. A known default with digits or punctuation around it
    (`changeme12345`, `Password!`) is still that default; a value of one repeated character or a short repeated
    run (`aaaa…`, `abcabc…`) has the length but not the secrecy."""
    if not value:
        return "missing or empty"
    if not value.strip():
        return "only whitespace"
    words = value.lower()
    letters = re.sub(r"[^a-z]", "", words)
    if words in KNOWN_DEFAULTS or PLACEHOLDER_MARK in words or letters in KNOWN_DEFAULTS - {""}:
        return "left at a well-known default or the .env.example placeholder"
    if len(value) < min_length:
        return f"too short ({len(value)} characters, need {min_length})"
    if len(set(value)) < MIN_DISTINCT_CHARACTERS or _repeats_a_short_run(value):
        return "too predictable (one character or a short run repeated)"
    return None


def _repeats_a_short_run(value: str) -> bool:
    """True when `value` is a run of at most a third of its length, repeated (`abcabcabc…`)."""
    for period in range(1, len(value) // 3 + 1):
        if all(value[i] == value[i - period] for i in range(period, len(value))):
            return True
    return False


def _weak_fernet_keys(value: str) -> str | None:
    """Why the Fernet key (or Airflow's comma-separated rotation list) is unusable, or None."""
    from cryptography.fernet import Fernet

    for key in value.split(","):
        encoded = key.strip().encode()
        try:
            Fernet(encoded)
            raw = base64.urlsafe_b64decode(encoded)
        except (ValueError, TypeError):
            return "not a Fernet key (32 url-safe base64-encoded bytes)"
        if len(set(raw)) < MIN_DISTINCT_BYTES:  # all zeros, or one byte repeated: anybody can guess it
            return "one byte repeated (an all-zero key?): anybody could decrypt the connections"
    return None


def setting_problems(env: Mapping[str, str]) -> list[Problem]:
    """Settings that contradict each other (the celery profile needs the shared PostgreSQL warehouse)."""
    executor = env.get("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    if "Celery" in executor and env.get("VYAPAR_DBT_TARGET", "duckdb") != "postgres":
        return [Problem("VYAPAR_DBT_TARGET", f"{executor} workers cannot share one DuckDB file: set it to postgres")]
    return []


def preflight(env: Mapping[str, str] | None = None) -> None:
    env = settings.environment() if env is None else env
    problems = secret_problems(env) + setting_problems(env)
    if problems:
        raise PreflightError(
            "VyaparBazaar refuses to start: these settings are missing or unsafe. Set them in .env "
            "(see .env.example), then `docker compose up` again:\n" + "\n".join(map(str, problems))
        )
    print("preflight: secrets set and not at a known default")


# ---------------------------------------------------------------------------------------------- init steps


def _log(message: str) -> None:
    print(f"init: {message}", flush=True)


def _airflow(*args: str) -> None:
    subprocess.run(["airflow", *args], check=True, stdout=subprocess.DEVNULL)


def wait_for_metadata_db(timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        proc = subprocess.run(["airflow", "db", "check"], capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"init: the metadata database did not answer within {timeout:.0f} s:\n{proc.stderr[-2000:]}")
        time.sleep(2)


def ensure_databases(admin_url: str, names: list[str]) -> None:
    """CREATE DATABASE for each name missing on the metadata server (the alert store, the Postgres warehouse)."""
    import psycopg2
    from psycopg2 import sql

    parts = urlsplit(admin_url.replace("postgresql+psycopg2://", "postgresql://", 1))
    conn = psycopg2.connect(
        host=parts.hostname, port=parts.port or 5432, user=parts.username, password=parts.password,
        dbname=parts.path.lstrip("/") or "postgres",
    )  # fmt: skip
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for name in names:
                cur.execute("select 1 from pg_database where datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
                    _log(f"created database {name}")
    finally:
        conn.close()


def write_admin_login(env: Mapping[str, str]) -> None:
    """The SimpleAuthManager's password file, from AIRFLOW_ADMIN_USERNAME / AIRFLOW_ADMIN_PASSWORD."""
    path = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    path.parent.mkdir(parents=True, exist_ok=True)
    username = env.get("AIRFLOW_ADMIN_USERNAME") or "admin"
    tmp = path.with_suffix(".tmp")
    write_private_file(tmp, json.dumps({username: env["AIRFLOW_ADMIN_PASSWORD"]}) + "\n", mode=0o640)
    tmp.replace(path)
    _log(f"admin login for {username!r} written to {path}")


def write_private_file(path: Path, text: str, mode: int = 0o600) -> None:
    """Write `text` to a new file that is never readable beyond `mode`, not even between its creation and a chmod.

    0o640: group 0 (the image's AIRFLOW_UID convention) reads the login file in the api-server; nobody else."""
    path.unlink(missing_ok=True)  # a leftover from a crash may have other permissions: O_EXCL makes ours
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), mode)  # exactly `mode`: the umask may have taken the group's read away
        handle.write(text)


def alert_connections(env: Mapping[str, str]) -> dict[str, dict]:
    """Airflow connections for the alert channels, from SLACK_* and SMTP_* variables (only those set)."""
    from include.vyapar.alerting.config import get_config

    config = get_config()
    conns: dict[str, dict] = {}
    if env.get("SLACK_BOT_TOKEN"):
        slack: dict = {"conn_type": "slack", "password": env["SLACK_BOT_TOKEN"]}
        if env.get("SLACK_API_URL"):  # a Slack-compatible endpoint other than slack.com (a proxy, a test double)
            slack["extra"] = json.dumps({"base_url": env["SLACK_API_URL"]})
        conns[config.slack.connection_id or DEFAULT_SLACK_CONN] = slack
    if env.get("SLACK_WEBHOOK_URL"):
        conns[config.slack.webhook_connection_id or DEFAULT_SLACK_WEBHOOK_CONN] = {
            "conn_type": "slackwebhook", "password": env["SLACK_WEBHOOK_URL"],
        }  # fmt: skip
    if env.get("SMTP_HOST"):
        conns[config.email.connection_id] = {
            "conn_type": "smtp", "host": env["SMTP_HOST"], "port": int(env.get("SMTP_PORT") or 25),
            "login": env.get("SMTP_USER") or None, "password": env.get("SMTP_PASSWORD") or None,
            "extra": json.dumps({
                "disable_tls": env.get("SMTP_STARTTLS", "false").lower() not in ("1", "true", "yes"),
                "disable_ssl": env.get("SMTP_SSL", "false").lower() not in ("1", "true", "yes"),
                "from_email": config.email.from_address,
            }),
        }  # fmt: skip
    return conns


def upsert_connections(conns: dict[str, dict]) -> None:
    """Create or replace connections in the metadata DB (encrypted with the Fernet key) through
    `airflow connections import`, from a private temporary file: no secret on a command line or in a log."""
    if not conns:
        return
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as handle:  # created 0600 (mkstemp)
        json.dump(conns, handle)
        handle.flush()
        _airflow("connections", "import", "--overwrite", handle.name)
    for conn_id, fields in conns.items():
        _log(f"connection {conn_id} ({fields['conn_type']}) set")


def land_and_build() -> None:
    """First raw data and warehouse build, once per volume (a restart keeps the data it finds)."""
    if not (settings.LANDING_DIR / "_state.json").exists():
        scale = settings.INITIAL_SCALE
        _log(f"generating raw data at scale {scale} into {settings.LANDING_DIR}")
        subprocess.run([sys.executable, "-m", "include.vyapar.data.datagen", "init", "--scale", scale], check=True)
    marker = settings.DATA_DIR / "warehouse" / f".bootstrapped-{settings.DBT_TARGET}"
    if not marker.exists():
        _log(f"first build of the {settings.DBT_TARGET} warehouse (dbt build)")
        subprocess.run([sys.executable, "-m", "include.vyapar.data.warehouse", "bootstrap"], check=True)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()


def init(env: Mapping[str, str] | None = None) -> None:
    env = settings.environment() if env is None else dict(env)
    started = time.monotonic()
    preflight(env)
    wait_for_metadata_db()
    _airflow("db", "migrate")
    _log("metadata database migrated")
    extra_dbs = [name for name in (env.get("VYAPAR_ALERTS_DB"), env.get("VYAPAR_WAREHOUSE_DB")) if name]
    if extra_dbs:
        ensure_databases(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], extra_dbs)
    write_admin_login(env)
    from include.vyapar.deploy.airflow_setup import ensure_pools

    ensure_pools()
    upsert_connections(alert_connections(env))
    land_and_build()
    _log(f"done in {time.monotonic() - started:.0f} s")


def connections() -> None:
    """Only the alert connections, from SLACK_* / SMTP_*: what bin/start takes from .env."""
    upsert_connections(alert_connections(settings.environment()))


def main(argv: list[str]) -> None:
    commands = {"preflight": preflight, "init": init, "connections": connections}
    if len(argv) != 1 or argv[0] not in commands:
        print("usage: python -m include.vyapar.deploy {preflight|init|connections}", file=sys.stderr)
        sys.exit(2)
    commands[argv[0]]()
