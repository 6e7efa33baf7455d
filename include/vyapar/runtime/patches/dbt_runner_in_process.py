"""Cosmos' in-process dbt call (`DbtLocalBaseOperator.run_dbt_runner`, the dbt_runner invocation), made to fit a
DuckDB file and the watcher producer:

- dbt-duckdb keeps its database open for the life of the process (duckdb/dbt-duckdb#616): a task process would
  hold DuckDB's file lock after dbt ended, and the next writer got a lock error. Closed here after each invocation
  (its `close_all_connections()` only drops the reference; the database stays open until garbage collection).
- Cosmos hands dbt's callbacks every event on dbt's own threads and its watcher callback pushes an XCom per node
  event, holding the node up meanwhile (astronomer/astronomer-cosmos#2777): here the callbacks get only what a dbt
  subprocess prints, off dbt's threads (dbt_in_process.EventRelay).
- The warehouse flock dbt-serialized takes, and the executor's manifest for a task's first invocation
  (warm_manifest.py): Cosmos has no hook for either around its dbtRunner call.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from include.vyapar import settings
from include.vyapar.runtime import warm_manifest
from include.vyapar.runtime.dbt_in_process import EventRelay, warehouse_lock

log = logging.getLogger(__name__)

# dbt commands that load the project's manifest (and accept one already parsed)
_USE_MANIFEST = {"build", "run", "test", "seed", "snapshot", "compile", "source", "run-operation", "show"}


def release_duckdb() -> None:
    """Close dbt-duckdb's database in this process (dbt opens it again on its next connection)."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # dbt-duckdb not installed: nothing to release
        return
    with DuckDBConnectionManager._LOCK:
        environment, DuckDBConnectionManager._ENV = DuckDBConnectionManager._ENV, None
    if environment is not None:
        try:
            environment.close()
        except Exception as exc:  # noqa: BLE001 -- dbt's result stands; a writer after us gets DuckDB's own error
            log.warning("could not close the DuckDB warehouse after dbt (%s: %s)", type(exc).__name__, exc)


def invoke(command: list[str], env: dict[str, str], cwd: str, callbacks: list[Callable[[Any], None]] | None):
    """Cosmos' `cosmos.dbt.runner.run_command`, from the executor's manifest when it still holds (else None)."""
    from cosmos.dbt.project import change_working_directory, environ
    from cosmos.dbt.runner import _cleanup_dbt_adapters
    from dbt.cli.main import dbtRunner

    args = command[1:]
    if not args or args[0] not in _USE_MANIFEST:
        return None
    manifest = warm_manifest.take(args, settings.subprocess_env(**env), cwd)
    if manifest is None:
        return None
    # the command line in the task's log, as Cosmos' run_command writes it
    log.info("Trying to run dbtRunner (the executor's manifest) with:\n %s\n in %s", args, cwd)
    with change_working_directory(cwd), environ(env):
        try:
            return dbtRunner(manifest=manifest, callbacks=callbacks or []).invoke(args)
        finally:
            _cleanup_dbt_adapters()  # as run_command: release the adapters' semaphores


def install() -> None:
    """Replace Cosmos' in-process dbt call (idempotent)."""
    import airflow  # noqa: F401 -- before cosmos (a circular import otherwise)
    from cosmos.operators.local import DbtLocalBaseOperator

    original = DbtLocalBaseOperator.run_dbt_runner
    if getattr(original, "__vyapar_patch__", False):
        return

    @functools.wraps(original)
    def run_dbt_runner(self, command: list[str], env: dict[str, str], cwd: str, **kwargs: Any):
        callbacks = self._dbt_runner_callbacks
        relay = EventRelay(list(callbacks)) if callbacks else None
        if relay:
            self._dbt_runner_callbacks = [relay.submit]
        try:
            with warehouse_lock():
                try:
                    result = invoke(command, env, cwd, self._dbt_runner_callbacks)
                    return result if result is not None else original(self, command, env, cwd, **kwargs)
                finally:
                    release_duckdb()
        finally:
            if relay:
                relay.close()
                self._dbt_runner_callbacks = callbacks

    run_dbt_runner.__vyapar_patch__ = True  # type: ignore[attr-defined]
    DbtLocalBaseOperator.run_dbt_runner = run_dbt_runner
