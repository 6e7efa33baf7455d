"""Test session isolation: every run gets its own data folder, DuckDB file and Airflow home (SQLite)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "test-artifacts"

# Set before anything imports include.vyapar.settings or airflow: both read the environment at import.
# Once per test session: this module can be imported twice (as `conftest` and as `tests.conftest`), and the
# second import must not move the session to a new folder after settings were read from the first.
if "VYAPAR_TEST_SESSION_DIR" not in os.environ:
    os.environ["VYAPAR_TEST_SESSION_DIR"] = tempfile.mkdtemp(prefix="vyapar-tests-")
_SESSION_DIR = Path(os.environ["VYAPAR_TEST_SESSION_DIR"])
os.environ["VYAPAR_DATA_DIR"] = str(_SESSION_DIR / "data")
os.environ["VYAPAR_LANDING_DIR"] = os.environ.get("VYAPAR_TEST_LANDING_DIR", str(_SESSION_DIR / "data" / "landing"))
os.environ["VYAPAR_DUCKDB_PATH"] = str(_SESSION_DIR / "data" / "warehouse" / "vyaparbazaar.duckdb")
os.environ["VYAPAR_WAREHOUSE_LOCK"] = str(_SESSION_DIR / "data" / "warehouse" / "vyaparbazaar.lock")
os.environ["AIRFLOW_HOME"] = str(_SESSION_DIR / "airflow_home")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO_ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] = "False"
os.environ["AIRFLOW__COSMOS__CACHE_DIR"] = str(_SESSION_DIR / "cosmos_cache")
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")


def session_dir() -> Path:
    return _SESSION_DIR
