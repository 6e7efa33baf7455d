"""dbt in the task's own process (Cosmos' dbt_runner invocation): the warehouse lock, and only the events read.

- The lock: a dbt subprocess runs through `bin/dbt-serialized`, whose flock keeps DuckDB to one writing process.
  dbt in process takes the same flock on the same file for the invocation, so both kinds of task (and a watcher
  sensor's retry, which runs dbt itself outside the warehouse pool) stay serialised. The kernel releases it if
  the task process dies.
- The events: dbt hands every event of a run to its callbacks, on its own threads, most of them debug events
  nobody prints (each SQL statement, each node's start/compile/execute). Cosmos' watcher producer converts each
  to JSON and pushes an XCom for each node event through the API server, holding the node up meanwhile: measured,
  the intermediate layer's 3.3 s build (subprocess) took 9.4-10.1 s in process. Here its callbacks receive what a
  dbt subprocess prints at its default log level (info and above: each node's result, errors, versions), from
  one thread of their own, in order, as Cosmos reads a subprocess's output.
- The DuckDB file: dbt-duckdb keeps its database open for the life of the process (it closes it at exit), so a
  task process would still hold DuckDB's own file lock after it let the flock go, for as long as it goes on
  (Cosmos' post-processing, failure callbacks, alerts): the next writer would get the flock, then a DuckDB lock
  error. The database is closed before the flock is released.
- The manifest: a task process's first dbt invocation starts from the manifest WarmLocalExecutor parsed before
  forking, when the project is unchanged since (warm_manifest.py); otherwise dbt parses as usual.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import queue
import threading
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from include.vyapar import settings
from include.vyapar.runtime import warm_manifest

log = logging.getLogger(__name__)


@contextmanager
def warehouse_lock(path: Path | None = None):
    """Hold the DuckDB writer lock (the file dbt-serialized flocks); no-op on Postgres (concurrent writers)."""
    if settings.IS_POSTGRES:
        yield
        return
    path = Path(path or os.environ.get("VYAPAR_WAREHOUSE_LOCK") or settings.WAREHOUSE_LOCK_PATH)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for the warehouse lock %s (another dbt process is using the DuckDB file)", path)
            fcntl.flock(handle, fcntl.LOCK_EX)
            log.info("got the warehouse lock")
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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


class EventRelay:
    """dbt's callbacks, off dbt's threads: the events a dbt subprocess prints (info level and above) go through a
    queue to one thread that calls the callbacks in order. Cosmos' watcher callback pushes an XCom per node event
    through the API server; called on dbt's threads it held each node up for that round trip."""

    def __init__(self, callbacks: list[Callable[[Any], None]]):
        self.callbacks = callbacks
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="dbt-event-relay", daemon=True)
        self.thread.start()

    def submit(self, event: Any) -> None:
        if event.info.level != "debug":
            self.queue.put(event)

    def _run(self) -> None:
        while (event := self.queue.get()) is not None:
            for callback in self.callbacks:
                try:
                    callback(event)
                except Exception:  # noqa: BLE001 -- as dbt does for its callbacks: log, go on
                    log.exception("dbt event callback %r failed", callback)

    def close(self) -> None:
        """Wait until every event has reached the callbacks."""
        self.queue.put(None)
        self.thread.join()


# dbt commands that load the project's manifest (and accept one already parsed)
_USE_MANIFEST = {"build", "run", "test", "seed", "snapshot", "compile", "source", "run-operation", "show"}


def invoke(command: list[str], env: dict[str, str], cwd: str, callbacks: list[Callable[[Any], None]] | None):
    """Cosmos' `cosmos.dbt.runner.run_command`, from the executor's manifest when it still holds (else None)."""
    from cosmos.dbt.project import change_working_directory, environ
    from cosmos.dbt.runner import _cleanup_dbt_adapters
    from dbt.cli.main import dbtRunner

    args = command[1:]
    if not args or args[0] not in _USE_MANIFEST:
        return None
    manifest = warm_manifest.take(args, {**os.environ, **env}, cwd)
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
    """Patch Cosmos' in-process dbt call (idempotent): take the warehouse lock, relay the callbacks' events, start
    from the executor's manifest."""
    from cosmos.operators.local import DbtLocalBaseOperator

    original = DbtLocalBaseOperator.run_dbt_runner
    if getattr(original, "__vyapar_patched__", False):
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

    run_dbt_runner.__vyapar_patched__ = True  # type: ignore[attr-defined]
    DbtLocalBaseOperator.run_dbt_runner = run_dbt_runner
