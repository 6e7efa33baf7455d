"""Where things live: every path and knob comes from an environment variable with a repo-relative default."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _path(var: str, default: Path) -> Path:
    return Path(os.environ.get(var) or default).expanduser().resolve()


DATA_DIR = _path("VYAPAR_DATA_DIR", REPO_ROOT / "data")
LANDING_DIR = _path("VYAPAR_LANDING_DIR", DATA_DIR / "landing")
# Locally the generator plays the extractor and lands each hour's batch; off in production, where an extractor
# lands the files and the sources DAG only checks and loads them.
SIMULATE_ARRIVALS = os.environ.get("VYAPAR_SIMULATE_ARRIVALS", "true").lower() in {"1", "true", "yes"}
# How much raw history the first start generates (`datagen init --scale`).
INITIAL_SCALE = os.environ.get("VYAPAR_SCALE", "1")
DUCKDB_PATH = _path("VYAPAR_DUCKDB_PATH", DATA_DIR / "warehouse" / "vyaparbazaar.duckdb")
DBT_PROJECT_DIR = _path("VYAPAR_DBT_PROJECT_DIR", REPO_ROOT / "dbt")
DBT_MANIFEST_PATH = _path("VYAPAR_DBT_MANIFEST", DBT_PROJECT_DIR / "target" / "manifest.json")
# The warehouse dbt builds: "duckdb" (default: one local file) or "postgres" (shared by many workers).
DBT_TARGET = os.environ.get("VYAPAR_DBT_TARGET", "duckdb")
DBT_PROFILE_NAME = "vyaparbazaar"  # dbt/profiles.yml and dbt_project.yml `profile:`
IS_POSTGRES = DBT_TARGET == "postgres"
# The Airflow connection of the Postgres warehouse (e.g. AIRFLOW_CONN_VYAPAR_WAREHOUSE=postgresql://u:p@host:5432/db):
# the one source of its credentials, for Cosmos' profile mapping and for every dbt CLI call we make ourselves.
WAREHOUSE_CONN_ID = os.environ.get("VYAPAR_WAREHOUSE_CONN_ID", "vyapar_warehouse")
# A file beside the warehouse: whoever holds it is the one process writing DuckDB.
WAREHOUSE_LOCK_PATH = _path("VYAPAR_WAREHOUSE_LOCK", DUCKDB_PATH.with_suffix(".lock"))
# THE declaration of every DAG (include/vyapar/pipeline/schedules.py loads it).
SCHEDULES_FILE = _path("VYAPAR_SCHEDULES_FILE", REPO_ROOT / "include" / "vyapar" / "pipeline" / "schedules.yaml")
# Warehouse snapshots (include/vyapar/data/snapshots.py): the newest SNAPSHOT_KEEP are kept, so their disk is
# bounded by that many times the warehouse file.
SNAPSHOT_DIR = _path("VYAPAR_SNAPSHOT_DIR", DUCKDB_PATH.parent / "snapshots")
SNAPSHOT_KEEP = max(1, int(os.environ.get("VYAPAR_SNAPSHOT_KEEP") or 7))
# The real dbt, next to this interpreter when installed in a virtualenv; dbt-serialized wraps it.
DBT_BIN = os.environ.get("VYAPAR_DBT_BIN") or (
    str(Path(sys.executable).with_name("dbt")) if Path(sys.executable).with_name("dbt").exists() else "dbt"
)
DBT_SERIALIZED = REPO_ROOT / "include" / "vyapar" / "runtime" / "bin" / "dbt-serialized"
# Airflow pool of every dbt task. DuckDB: one slot, the scheduler-side half of the single-writer lock. Postgres
# takes concurrent writers: VYAPAR_WAREHOUSE_POOL_SLOTS (default 8) dbt tasks at a time across all workers.
WAREHOUSE_POOL = os.environ.get("VYAPAR_WAREHOUSE_POOL") or (
    "postgres_warehouse" if IS_POSTGRES else "duckdb_warehouse"
)
WAREHOUSE_POOL_SLOTS = int(os.environ.get("VYAPAR_WAREHOUSE_POOL_SLOTS") or 8) if IS_POSTGRES else 1
TIMEZONE = os.environ.get("VYAPAR_TIMEZONE", "Asia/Kolkata")
# Airflow's metadata database, read-only, for the weekly report when it runs in a task (Airflow 3 blocks the ORM
# there); unset: Airflow's own session where it is allowed, else Airflow's default SQLite file in AIRFLOW_HOME
# (bin/start's database). Compose sets it.
METADATA_DB_URL = os.environ.get("VYAPAR_METADATA_DB_URL") or None
AIRFLOW_HOME = _path("AIRFLOW_HOME", Path.home() / "airflow")
# The bearer token a Prometheus server scrapes /vyapar-metrics/metrics with (empty: no token accepted).
METRICS_TOKEN = os.environ.get("VYAPAR_METRICS_TOKEN", "")
# Client networks (comma-separated CIDRs) that may scrape /vyapar-metrics without the token; empty: none.
METRICS_ALLOW_FROM = os.environ.get("VYAPAR_METRICS_ALLOW_FROM", "")
# The reconciler (alerts for failures no callback reported): how often the scheduler's sweeper runs it, and how far
# back it looks in the metadata database.
RECONCILE_INTERVAL_SECONDS = float(os.environ.get("VYAPAR_RECONCILE_INTERVAL_SECONDS") or 60)
RECONCILE_LOOKBACK_HOURS = float(os.environ.get("VYAPAR_RECONCILE_LOOKBACK_HOURS") or 24)
DEFAULT_ALERTING_CONFIG = REPO_ROOT / "include" / "vyapar" / "alerting" / "alerting.yaml"
DEFAULT_AIRFLOW_BASE_URL = "http://localhost:8080"


# Read when called, not at import: tests, the compose entrypoint and Airflow set these after this module is imported.
def alerting_config_path() -> Path:
    """The one alerting declaration (VYAPAR_ALERTING_CONFIG)."""
    return _path("VYAPAR_ALERTING_CONFIG", DEFAULT_ALERTING_CONFIG)


def alert_store_url() -> str:
    """The alert store (VYAPAR_ALERT_STORE_URL): SQLite in DATA_DIR by default, PostgreSQL under compose."""
    return os.environ.get("VYAPAR_ALERT_STORE_URL") or f"sqlite:///{DATA_DIR / 'alerts.sqlite'}"


def platform_base_url(configured: str | None = None) -> str:
    """Where the reader of an alert reaches this platform, for every link in it (task log, DAG run, runbooks, health
    view): Airflow's `[api] base_url` (AIRFLOW__API__BASE_URL, a sub-path included), else VYAPAR_AIRFLOW_BASE_URL,
    else `configured` (alerting.yaml's links.airflow_base_url), else http://localhost:8080. No trailing slash."""
    try:
        from airflow.configuration import conf

        api_base_url = conf.get("api", "base_url", fallback=None)
    except Exception:  # noqa: BLE001 — Airflow fails to import here (its logging config): the alert still gets out
        api_base_url = os.environ.get("AIRFLOW__API__BASE_URL")
    return (
        api_base_url
        or os.environ.get("VYAPAR_AIRFLOW_BASE_URL")
        or configured
        or DEFAULT_AIRFLOW_BASE_URL
    ).rstrip("/")


def runbook_base_url() -> str | None:
    """VYAPAR_RUNBOOK_BASE_URL: runbooks kept elsewhere (a wiki); None: the platform serves docs/runbooks.md."""
    return os.environ.get("VYAPAR_RUNBOOK_BASE_URL") or None


def slack_transport() -> str:
    """VYAPAR_SLACK_TRANSPORT, rendered by compose: "api" (a bot token is set), "webhook" (only a webhook URL)."""
    return os.environ.get("VYAPAR_SLACK_TRANSPORT", "")


def alert_channels() -> list[str] | None:
    """VYAPAR_ALERT_CHANNELS: the channels this deployment delivers to, in order, each once; None: alerting.yaml's."""
    raw = os.environ.get("VYAPAR_ALERT_CHANNELS")
    if not raw:
        return None
    return list(dict.fromkeys(c.strip() for c in raw.split(",") if c.strip()))


def inline_delivery() -> bool:
    """VYAPAR_ALERTING_KICK (default on): the process that raises an alert makes the first delivery attempt."""
    return os.environ.get("VYAPAR_ALERTING_KICK", "1").lower() not in ("0", "false", "no")


def inline_wait_seconds() -> float:
    """VYAPAR_ALERTING_INLINE_WAIT_SECONDS (default 10): how long a raising process waits for its inline attempt."""
    try:
        return float(os.environ.get("VYAPAR_ALERTING_INLINE_WAIT_SECONDS") or 10)
    except ValueError:
        return 10.0


def connection_variables() -> dict[str, str]:
    """Every Airflow connection given in the environment: AIRFLOW_CONN_<ID> name -> its URI or JSON."""
    return {name: value for name, value in os.environ.items() if name.startswith("AIRFLOW_CONN_") and value}


def environment() -> dict[str, str]:
    """A copy of the whole environment, for the code that judges a deployment's settings together (deploy preflight)."""
    return dict(os.environ)


def setting(var: str, default: str = "") -> str:
    """One variable read when called, for a knob that a test or a DAG run may change after import."""
    return os.environ.get(var) or default


def warehouse_lock_path() -> Path:
    """The DuckDB writer lock, read when called (a test or a bench points it at its own warehouse)."""
    return _path("VYAPAR_WAREHOUSE_LOCK", DUCKDB_PATH.with_suffix(".lock"))


@contextmanager
def dbt_environment() -> Iterator[dict[str, str]]:
    """This process's environment with dbt_env() applied (in-process dbt reads env_var()), restored afterwards;
    yields a copy of it."""
    saved = dict(os.environ)
    os.environ.update(dbt_env())
    try:
        yield dict(os.environ)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment a child process runs with: this process's, plus `extra`."""
    return {**os.environ, **extra}


def declare_server_process() -> None:
    """Tell Airflow this process is server-side (it may read connections from the metadata database), unless a
    process context is set already: what a flusher started outside a task or server needs."""
    os.environ.setdefault("_AIRFLOW_PROCESS_CONTEXT", "server")


def dbt_env() -> dict[str, str]:
    """Environment variables the dbt project reads (profiles.yml, sources); absolute paths only."""
    return {
        "VYAPAR_DUCKDB_PATH": str(DUCKDB_PATH),
        "VYAPAR_LANDING_DIR": str(LANDING_DIR),
        "VYAPAR_DBT_TARGET": DBT_TARGET,
        "VYAPAR_DUCKDB_THREADS": os.environ.get("VYAPAR_DUCKDB_THREADS", "2"),
        "VYAPAR_DUCKDB_MEMORY_LIMIT": os.environ.get("VYAPAR_DUCKDB_MEMORY_LIMIT", "3GB"),
        "VYAPAR_PG_THREADS": os.environ.get("VYAPAR_PG_THREADS", "4"),
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        "VYAPAR_WAREHOUSE_LOCK": str(WAREHOUSE_LOCK_PATH),
        "VYAPAR_DBT_BIN": DBT_BIN,
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


class WarehouseConnectionError(RuntimeError):
    """The Postgres warehouse connection is not configured, or the warehouse does not answer."""


@dataclass(frozen=True)
class PostgresWarehouse:
    """The Postgres warehouse as the Airflow connection describes it. repr() never shows the password."""

    host: str
    port: int
    user: str
    dbname: str
    password: str = field(default="", repr=False)
    sslmode: str | None = None

    def __str__(self) -> str:
        return f"postgres://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def dbt_env(self) -> dict[str, str]:
        """The VYAPAR_PG_* variables dbt/profiles.yml reads for its postgres output."""
        env = {
            "VYAPAR_PG_HOST": self.host,
            "VYAPAR_PG_PORT": str(self.port),
            "VYAPAR_PG_USER": self.user,
            "VYAPAR_PG_PASSWORD": self.password,
            "VYAPAR_PG_DATABASE": self.dbname,
        }
        if self.sslmode:
            env["VYAPAR_PG_SSLMODE"] = self.sslmode
        return env


def _connection_from_env(conn_id: str, raw: str) -> dict:
    """An AIRFLOW_CONN_<ID> value (Airflow's URI or JSON form) as host/port/login/password/schema/extra,
    parsed the way Airflow does, without importing Airflow (CLI start-up stays fast)."""
    import json
    from urllib.parse import parse_qsl, unquote, urlsplit

    if raw.lstrip().startswith("{"):
        conn = json.loads(raw)
        extra = conn.get("extra") or {}
        return {**conn, "extra": json.loads(extra) if isinstance(extra, str) else extra}
    url = urlsplit(raw)
    return {
        "host": unquote(url.hostname or ""),
        "port": url.port,
        "login": unquote(url.username or ""),
        "password": unquote(url.password or ""),
        "schema": unquote(url.path.lstrip("/")),
        "extra": dict(parse_qsl(url.query)),
    }


def postgres_warehouse(conn_id: str | None = None) -> PostgresWarehouse:
    """Resolve the warehouse's Airflow connection: AIRFLOW_CONN_<ID> (URI or JSON) first, else Airflow's lookup
    (secrets backend, metadata database). Raises WarehouseConnectionError naming the connection id."""
    conn_id = conn_id or WAREHOUSE_CONN_ID
    raw = connection_variables().get(f"AIRFLOW_CONN_{conn_id.upper()}")
    try:
        if raw:
            conn = _connection_from_env(conn_id, raw)
        else:
            from airflow.sdk import BaseHook

            found = BaseHook.get_connection(conn_id)
            conn = {
                "host": found.host, "port": found.port, "login": found.login, "password": found.password,
                "schema": found.schema, "extra": found.extra_dejson,
            }  # fmt: skip
    except Exception as exc:  # an unknown conn_id raises differently inside and outside a task
        raise WarehouseConnectionError(
            f"the warehouse connection {conn_id!r} is not defined or not readable: set AIRFLOW_CONN_{conn_id.upper()}"
            "=postgresql://user:password@host:5432/dbname (or define it in Airflow) "
            f"[{type(exc).__name__}]"
        ) from None
    if not conn.get("host") or not conn.get("schema"):
        raise WarehouseConnectionError(f"the warehouse connection {conn_id!r} needs a host and a database name")
    return PostgresWarehouse(
        host=conn["host"],
        port=int(conn.get("port") or 5432),
        user=conn.get("login") or "",
        password=conn.get("password") or "",
        dbname=conn["schema"],
        sslmode=(conn.get("extra") or {}).get("sslmode"),
    )


def dbt_cli_env(connect: bool = True) -> dict[str, str]:
    """dbt_env() for the dbt CLI calls made outside Cosmos, plus the Postgres credentials from the warehouse
    connection when the target is postgres. `connect=False` (parse, ls: no database opened) tolerates a missing
    connection. The result holds the password: pass it to a subprocess, never log it."""
    env = dbt_env()
    if IS_POSTGRES:
        try:
            env.update(postgres_warehouse().dbt_env())
        except WarehouseConnectionError:
            if connect:
                raise
    return env
