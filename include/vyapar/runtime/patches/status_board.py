"""The watcher producer's per-node results as one XCom: the status board.

Cosmos' watcher producer pushes three or four XComs per dbt node (its event, its status, its compiled SQL, its
tests' aggregate), and each model's sensor polls its own keys: every one a round trip through the task's
supervisor and the API server. Measured at 100k events (2 cores), the staging layer's 107 nodes ran 1.5x slower
inside the producer than the same nodes in a plain `dbt build` (20.2 s vs 13.2 s of node time), and the sensors
ended 5-6 s after the producer: their reads queued one behind another in the triggerer.

Here, in the producer, the per-node keys go to an in-memory board instead, pushed as one XCom (BOARD_KEY) every
FLUSH_SECONDS and once more as soon as dbt has finished (Cosmos' `callback`, before it raises on a failed node);
every sensor of the run then reads that one XCom (watcher_trigger.py), shared in the triggerer. Other keys
(the producer's flags, its completion) go to XCom as before. Compiled SQL is dropped: Cosmos shows it only when a
sensor ends on a worker, and ours end in the triggerer.

Upstream: astronomer/astronomer-cosmos#2736 (the watcher's XCom write amplification) and #2777. Private names:
Cosmos' per-node XCom keys and `_DBT_STARTUP_EVENTS_XCOM_KEY`, `cosmos.operators._watcher.state.xcom_set_lock`,
and the task instance's `xcom_push`/`xcom_pull` shadowed past its pydantic `__setattr__`. Patches nothing when
imported: the producer's pre_execute opens a board (dag_factory).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import airflow  # noqa: F401 -- before cosmos.constants (a circular import otherwise)
from cosmos.constants import _DBT_STARTUP_EVENTS_XCOM_KEY

log = logging.getLogger(__name__)

BOARD_KEY = "vyapar_status_board"
FLUSH_SECONDS = 1.0
# Cosmos' per-node keys: "<resource>__<package>__<name>" + one of these (state.py, aggregation.py).
NODE_KEY_SUFFIXES = ("_status", "_dbt_event", "_compiled_sql")
DROPPED_SUFFIXES = ("_compiled_sql",)


def on_board(key: str) -> bool:
    """Whether Cosmos' XCom `key` is a per-node key (kept on the board, not pushed on its own)."""
    return key == _DBT_STARTUP_EVENTS_XCOM_KEY or ("__" in key and key.endswith(NODE_KEY_SUFFIXES))


class StatusBoard:
    """Installed on the producer's task instance for its execution: its `xcom_push`/`xcom_pull` of per-node keys
    read and write the board; a thread pushes the board when it changed, every `flush_seconds`."""

    ATTR = "_vyapar_status_board"

    def __init__(self, ti: Any, flush_seconds: float = FLUSH_SECONDS):
        self.ti = ti
        self.flush_seconds = flush_seconds
        self.values: dict[str, Any] = {}
        self._push, self._pull = ti.xcom_push, ti.xcom_pull
        self._lock = threading.Lock()
        self._dirty = True  # the empty board goes out first: sensors then know a board is coming
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vyapar-status-board", daemon=True)

    # ---------------------------------------------------------------------------------------- the producer side
    @classmethod
    def open(cls, ti: Any, flush_seconds: float = FLUSH_SECONDS) -> StatusBoard:
        board = getattr(ti, cls.ATTR, None)
        if board is not None:
            return board
        board = cls(ti, flush_seconds)
        board.flush()
        # Instance attributes shadow the task instance's methods (a pydantic model: set them past its __setattr__).
        object.__setattr__(ti, "xcom_push", board.xcom_push)
        object.__setattr__(ti, "xcom_pull", board.xcom_pull)
        object.__setattr__(ti, cls.ATTR, board)
        board._thread.start()
        return board

    @classmethod
    def of(cls, ti: Any) -> StatusBoard | None:
        return getattr(ti, cls.ATTR, None) if ti is not None else None

    def xcom_push(self, key: str, value: Any, *args: Any, **kwargs: Any) -> None:
        if not on_board(key):
            return self._push(key, value, *args, **kwargs)
        if key.endswith(DROPPED_SUFFIXES):
            return None
        with self._lock:
            self.values[key] = value
            self._dirty = True
        return None

    def xcom_pull(self, *args: Any, **kwargs: Any) -> Any:
        key, task_ids = kwargs.get("key"), kwargs.get("task_ids", args[0] if args else None)
        if key is not None and on_board(key) and task_ids in (None, self.ti.task_id):
            with self._lock:
                return self.values.get(key)
        return self._pull(*args, **kwargs)

    def flush(self) -> None:
        """Push the board if it changed since the last push (under Cosmos' XCom lock: dbt's threads push too)."""
        from cosmos.operators._watcher.state import xcom_set_lock

        with xcom_set_lock:
            with self._lock:
                if not self._dirty:
                    return
                snapshot, self._dirty = dict(self.values), False
            try:
                self._push(BOARD_KEY, snapshot)
            except Exception:
                with self._lock:
                    self._dirty = True
                raise

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 -- the next tick or the final flush tries again
                log.exception("status board: push failed; retrying")

    def close(self) -> None:
        """The last push; the task instance gets its own methods back."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        try:
            self.flush()
        finally:
            for name in ("xcom_push", "xcom_pull", self.ATTR):
                self.ti.__dict__.pop(name, None)


def open_for(context: Any) -> StatusBoard | None:
    """pre_execute of the watcher producer: per-node results go to the board for this execution. Not on a retry:
    Cosmos skips the producer then, after restoring the first try's XComs key by key (the sensors read those)."""
    ti = context.get("ti")
    if ti is None or (getattr(ti, "try_number", 1) or 1) > 1:
        return None
    return StatusBoard.open(ti)


def flush_after_dbt(project_dir: str, context: Any = None, **_: Any) -> None:
    """Cosmos `callback` (first of the list): dbt has finished, its last results go out now, not a tick later."""
    board = StatusBoard.of((context or {}).get("ti"))
    if board is not None:
        board.flush()


def close_for(context: Any) -> None:
    """post_execute (and the failure path) of the producer: the final push; nothing when there is no board."""
    board = StatusBoard.of((context or {}).get("ti"))
    if board is not None:
        board.close()
