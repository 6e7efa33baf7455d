"""dbt in the task's own process (Cosmos' dbt_runner invocation): the warehouse lock, and only the events read.

- The lock: a dbt subprocess runs through `bin/dbt-serialized`, whose flock keeps DuckDB to one writing process.
  dbt in process takes the same flock on the same file for the invocation, so both kinds of task (and a watcher
  sensor's retry, which runs dbt itself outside the warehouse pool) stay serialised. The kernel releases it if
  the task process dies.
- The events: dbt hands every event of a run to its callbacks, on its own threads, most of them debug events
  nobody prints. EventRelay gives the callbacks what a dbt subprocess prints at its default level (info and
  above), from one thread of their own, in order, as Cosmos reads a subprocess's output.

Both wrap Cosmos' dbtRunner call in patches/dbt_runner_in_process.py (which also closes dbt-duckdb's database
before the flock is released, and starts from the executor's manifest).
"""

from __future__ import annotations

import fcntl
import logging
import queue
import threading
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from include.vyapar import settings

log = logging.getLogger(__name__)


class WarehouseBusyError(RuntimeError):
    """Another process holds the DuckDB writer lock."""


@contextmanager
def warehouse_lock(path: Path | None = None, *, wait: bool = True):
    """Hold the DuckDB writer lock (the file dbt-serialized flocks); no-op on Postgres (concurrent writers).
    With wait=False, raise WarehouseBusyError at once when another process holds it."""
    if settings.IS_POSTGRES:
        yield
        return
    path = Path(path or settings.warehouse_lock_path())
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise WarehouseBusyError(f"a writer holds the warehouse lock {path}: try again when it has finished") from None
            log.info("waiting for the warehouse lock %s (another dbt process is using the DuckDB file)", path)
            fcntl.flock(handle, fcntl.LOCK_EX)
            log.info("got the warehouse lock")
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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
