"""Test session isolation: every run gets its own data folder, DuckDB file and Airflow home (SQLite)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "test-artifacts"

# Set before anything imports include.vyapar.settings or airflow: both read the environment at import.
# Once per test session: this module can be imported twice (as `conftest` and as `tests.conftest`), and the
# second import must not move the session to a new folder after settings were read from the first.
if "VYAPAR_TEST_SESSION_DIR" not in os.environ:
    os.environ["VYAPAR_TEST_SESSION_DIR"] = tempfile.mkdtemp(prefix="vyapar-tests-")
# Under pytest-xdist every worker is its own test session: its own data folder, warehouse and Airflow home.
_SESSION_DIR = Path(os.environ["VYAPAR_TEST_SESSION_DIR"]) / os.environ.get("PYTEST_XDIST_WORKER", "main")
_SESSION_DIR.mkdir(parents=True, exist_ok=True)
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


# Tests that share an expensive session fixture (a built warehouse, Airflow runs, a platform) or one PostgreSQL
# database run on the same xdist worker (`--dist loadgroup`), so each fixture is built once per test run.
XDIST_GROUPS: dict[str, str | None] = {
    # None: shares no expensive fixture, runs on any worker
    **dict.fromkeys([f"tests/dags/{m}.py" for m in ("test_dag_integrity", "test_first_scheduled_run")], None),
    **dict.fromkeys([f"tests/runtime/{m}.py" for m in (
        "test_one_runtime", "test_patches", "test_quiet_logs", "test_warm_manifest", "test_watcher_board")], None),
    "tests/dags/": "airflow-layers",
    "tests/runtime/": "airflow-layers",
    "tests/dbt/test_postgres_warehouse.py": "postgres",
    "tests/alerting/test_alerting_store.py": "postgres",
    # each a module of its own: the real containers, the compose stand-in, bin/start (the longest poles)
    "tests/deployment/test_containers.py": "containers",
    "tests/deployment/test_compose_stack.py": "compose-standin",
    # one bin/start platform (tests/bin_start.py), in BIN_START_ORDER; the parse-time config and weekly-report tests
    # share nothing of the alerting-e2e group's
    "tests/deployment/test_local_start.py": "bin-start",
    "tests/deployment/test_watcher_execution.py": "bin-start",
    "tests/alerting_e2e/test_delivery_under_bin_start.py": "bin-start",
    "tests/alerting_e2e/test_alerting_config_at_parse.py": None,
    "tests/alerting_e2e/test_weekly_report.py": None,
    "tests/alerting_e2e/": "alerting-e2e",
    # the UI journey runs on the same bin/start platform; the other UI tests start their own servers (a group each:
    # module fixtures)
    "tests/ui/test_ui_journey.py": "bin-start",
    "tests/ui/test_login_under_subpath.py": "ui-subpath",
    "tests/ui/test_prometheus_metrics.py": "ui-metrics",
    "tests/ui/test_health_layout.py": "ui-layout",
    "tests/ui/test_health_snapshot.py": None,
    "tests/dbt/": "warehouse",
    "tests/landing/": "warehouse",
}
# The inner loop (`bin/test --fast`) leaves out what starts Airflow processes or builds whole warehouses.
SLOW_PATHS = ("tests/alerting_e2e/", "tests/ui/", "tests/deployment/", "tests/dbt/", "tests/runtime/", "tests/dags/test_dag_runs.py")


# The order of the tests on the one bin/start platform: the newcomer's first start (DAGs unpaused), then the tests
# that pause the DAGs (the UI journey last of them: it seeds a week of history into the alert store), then the
# Ctrl-C that stops it.
BIN_START_ORDER = (
    "tests/deployment/test_local_start.py::",
    "tests/alerting_e2e/test_delivery_under_bin_start.py::",
    "tests/deployment/test_watcher_execution.py::",
    "tests/ui/test_ui_journey.py::",
    "tests/deployment/test_local_start.py::test_ctrl_c_stops_the_platform_and_everything_it_started",
)


# The groups, longest first (seconds of setup + call + teardown in a whole run, 2026-12-07): xdist hands a worker the
# next group in this order when it has two tests or fewer left (`--no-loadscope-reorder` in bin/test), so the long
# groups start early, and the short ungrouped tests fill in at the end, when one worker would otherwise wait for the
# other (xdist's own order, by test count, started the 3-test container group late: ~80 s of one idle worker).
GROUP_ORDER = (
    "bin-start",  # 366 s
    "alerting-e2e",  # 337 s
    "containers",  # 279 s
    "warehouse",  # 234 s
    "airflow-layers",  # 207 s
    "compose-standin",  # 130 s
    "postgres",  # 95 s
    "ui-metrics",  # 18 s
    "ui-subpath",  # 8 s
    "ui-layout",  # 2 s
)


def _group_rank(item) -> int:
    marker = item.get_closest_marker("xdist_group")
    name = marker and (marker.args[0] if marker.args else marker.kwargs.get("name"))
    return GROUP_ORDER.index(name) if name in GROUP_ORDER else len(GROUP_ORDER)


def _bin_start_rank(nodeid: str) -> int:
    return max(i for i, prefix in enumerate(BIN_START_ORDER) if nodeid.startswith(prefix))


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups into the node ids
def pytest_collection_modifyitems(config, items):
    slots = [i for i, item in enumerate(items) if any(item.nodeid.startswith(p) for p in BIN_START_ORDER)]
    ordered = sorted((items[i] for i in slots), key=lambda item: _bin_start_rank(item.nodeid))  # stable
    for i, item in zip(slots, ordered, strict=True):
        items[i] = item
    for item in items:
        path = Path(str(item.fspath)).relative_to(REPO_ROOT).as_posix()
        group = next((g for prefix, g in XDIST_GROUPS.items() if path.startswith(prefix)), None)  # None: any worker
        if group and not any(m.name == "xdist_group" for m in item.iter_markers()):
            item.add_marker(pytest.mark.xdist_group(group))
        if path.startswith(SLOW_PATHS):
            item.add_marker(pytest.mark.slow)
    items.sort(key=_group_rank)  # stable: each group's own order (and BIN_START_ORDER) is kept


# Real Airflow runs (metadata DB, raw data, the layer runs) and bin/start platforms as plugins: each session fixture
# exists once per worker.
pytest_plugins = ["tests.airflow_runs", "tests.bin_start"]
