"""Real Airflow runs, shared by every test folder: a migrated SQLite metadata DB, generated raw data, `airflow dags test`,
and the layer DAGs run once on an empty warehouse.

A pytest plugin (`pytest_plugins` in tests/conftest.py), not a conftest import: a session fixture imported into
several conftests is a separate fixture in each, and ran once per folder in the same worker."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from include.vyapar import settings
from tests.conftest import ARTIFACTS as ALL_ARTIFACTS

BIN = Path(sys.executable).parent
ARTIFACTS = ALL_ARTIFACTS / "dags_test"
# `airflow dags test` runs a DAG's tasks one after the other in its own process, so a sensor cannot wait there for
# a producer: the DAGs here are built and run in Cosmos' local execution (a task per model: the path of a targeted
# run and of a retry), dbt in that process (tests/runtime/test_crash_recovery.py asks for a process it can kill).
# The platform's own execution (watcher: include/vyapar/pipeline/cosmos_config.py) runs on a real scheduler and
# triggerer in tests/deployment/ and tests/ui/.
PER_MODEL_EXECUTION = {"VYAPAR_DBT_EXECUTION": "local", "VYAPAR_DBT_INVOCATION": "dbt_runner"}


def airflow_cli(
    *args: str, env: dict | None = None, timeout: int = 900, check: bool = True
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(BIN / "airflow"), *args], env={**os.environ, **(env or {})},
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(
            f"airflow {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


class Gate:
    """A named pipe that a test's probe model reads before it ends (a DuckDB `read_csv` of it): the model waits, at no
    CPU cost, until the test opens the gate, or its dbt process is killed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)

    def open(self, stop: threading.Event) -> bool:
        """Write the line the model waits for, once the model is reading (a writer needs a reader); False if `stop`
        is set first (the run ended without reaching the gate)."""
        while not stop.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
                time.sleep(0.2)
                continue
            try:
                os.write(fd, b"open\n")
            finally:
                os.close(fd)
            return True
        return False


@dataclass
class DagTestResult:
    dag_id: str
    state: str
    output: str
    seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


def dags_test(dag_id: str, conf: dict | None = None, env: dict | None = None, timeout: int = 900) -> DagTestResult:
    """Run a DAG with `airflow dags test` (a real DagRun in the metadata DB, tasks in-process) and read its end state."""
    env = {**PER_MODEL_EXECUTION, **(env or {})}
    args = ["dags", "test", dag_id]
    if conf:
        args += ["-c", json.dumps(conf)]
    started = time.monotonic()
    proc = airflow_cli(*args, env=env, timeout=timeout, check=False)
    output = proc.stdout + proc.stderr
    state = "unknown"
    for line in output.splitlines():
        if "DagRun Finished" in line and f"dag_id={dag_id}" in line:
            state = line.split(" state=", 1)[1].split(",", 1)[0]
    result = DagTestResult(dag_id=dag_id, state=state, output=output, seconds=time.monotonic() - started)
    if not result.succeeded:  # the whole output, beside the assertion's tail (the run's logs go with its folder)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"{dag_id}-{datetime.now(UTC):%H%M%S}.log").write_text(output)
    return result


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A fresh AIRFLOW_HOME with a migrated SQLite database and the warehouse pool."""
    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    airflow_cli("db", "migrate")
    airflow_cli("pools", "set", settings.WAREHOUSE_POOL, "1", "DuckDB single writer")
    return home


@pytest.fixture(scope="session")
def raw_landing() -> Path:
    """A small generated raw dataset, stamped now so source freshness passes."""
    from include.vyapar.data.datagen import generate_initial

    as_of = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    generate_initial(settings.LANDING_DIR, scale=0.05, seed=7, as_of=as_of, force=True, progress=False)
    return settings.LANDING_DIR


@pytest.fixture(scope="session")
def session_warehouse(airflow_db, raw_landing) -> Path:
    """The worker's warehouse, built from the generated raw data by one `dbt build`, as `bin/start` bootstraps a new
    platform's. The layer DAGs themselves run, in schedule order, on the platform a newcomer starts
    (tests/deployment/test_local_start.py), in the product's execution."""
    assert not settings.DUCKDB_PATH.exists()
    proc = subprocess.run(
        [sys.executable, "-m", "include.vyapar.data.warehouse", "bootstrap"], env=os.environ, capture_output=True,
        text=True, timeout=900, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return settings.DUCKDB_PATH
