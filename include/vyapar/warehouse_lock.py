"""The single-writer rule for the DuckDB file: one dbt invocation at a time, across every DAG and process.

dbt runs in the task's own process (Cosmos' dbt_runner mode), so the lock is taken in the task's pre_execute
and released after it — or by the kernel when the process dies, even on SIGKILL. It is the same flock(2) on
the same file as `bin/dbt-serialized`, which guards dbt runs outside Airflow.
"""

from __future__ import annotations

import fcntl
import gc
import os
import time

from include.vyapar import settings

_held_fd: int | None = None


def acquire(log=print) -> float:
    """Block until this process holds the warehouse lock; returns seconds waited."""
    global _held_fd
    if _held_fd is not None:
        return 0.0
    settings.WAREHOUSE_LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(settings.WAREHOUSE_LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o644)
    started = time.monotonic()
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log(f"waiting for the warehouse lock {settings.WAREHOUSE_LOCK_PATH} (another dbt process is using the DuckDB file)")
        fcntl.flock(fd, fcntl.LOCK_EX)
        log(f"got the warehouse lock after {time.monotonic() - started:.1f} s")
    _held_fd = fd
    return time.monotonic() - started


def close_duckdb_connections() -> None:
    """dbt-duckdb keeps its DuckDB database open for the life of the process; close it so others can open the file."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another warehouse adapter: nothing held open
        return
    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            try:
                DuckDBConnectionManager._ENV.close()
            finally:
                DuckDBConnectionManager._ENV = None
    gc.collect()


def release() -> None:
    global _held_fd
    close_duckdb_connections()
    if _held_fd is not None:
        fd, _held_fd = _held_fd, None
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
