"""Where things live: every path and knob comes from an environment variable with a repo-relative default."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _path(var: str, default: Path) -> Path:
    return Path(os.environ.get(var) or default).expanduser().resolve()


DATA_DIR = _path("VYAPAR_DATA_DIR", REPO_ROOT / "data")
LANDING_DIR = _path("VYAPAR_LANDING_DIR", DATA_DIR / "landing")
DUCKDB_PATH = _path("VYAPAR_DUCKDB_PATH", DATA_DIR / "warehouse" / "vyaparbazaar.duckdb")
DBT_PROJECT_DIR = _path("VYAPAR_DBT_PROJECT_DIR", REPO_ROOT / "dbt")
DBT_MANIFEST_PATH = _path("VYAPAR_DBT_MANIFEST", DBT_PROJECT_DIR / "target" / "manifest.json")
DBT_TARGET = os.environ.get("VYAPAR_DBT_TARGET", "duckdb")
# A file beside the warehouse: whoever holds it is the one process writing DuckDB.
WAREHOUSE_LOCK_PATH = _path("VYAPAR_WAREHOUSE_LOCK", DUCKDB_PATH.with_suffix(".lock"))
# The real dbt, next to this interpreter when installed in a virtualenv; dbt-serialized wraps it.
DBT_BIN = os.environ.get("VYAPAR_DBT_BIN") or (
    str(Path(sys.executable).with_name("dbt")) if Path(sys.executable).with_name("dbt").exists() else "dbt"
)
DBT_SERIALIZED = REPO_ROOT / "include" / "vyapar" / "bin" / "dbt-serialized"
# Airflow pool of one slot for every task that opens the DuckDB file (the scheduler-side half of the lock).
WAREHOUSE_POOL = os.environ.get("VYAPAR_WAREHOUSE_POOL", "duckdb_warehouse")
TIMEZONE = os.environ.get("VYAPAR_TIMEZONE", "Asia/Kolkata")


def dbt_env() -> dict[str, str]:
    """Environment variables the dbt project reads (profiles.yml, sources); absolute paths only."""
    return {
        "VYAPAR_DUCKDB_PATH": str(DUCKDB_PATH),
        "VYAPAR_LANDING_DIR": str(LANDING_DIR),
        "VYAPAR_DBT_TARGET": DBT_TARGET,
        "VYAPAR_DUCKDB_THREADS": os.environ.get("VYAPAR_DUCKDB_THREADS", "2"),
        "VYAPAR_DUCKDB_MEMORY_LIMIT": os.environ.get("VYAPAR_DUCKDB_MEMORY_LIMIT", "4GB"),
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        "VYAPAR_WAREHOUSE_LOCK": str(WAREHOUSE_LOCK_PATH),
        "VYAPAR_DBT_BIN": DBT_BIN,
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
