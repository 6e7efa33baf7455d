"""The triggerer logs the watcher's "no status board yet" as what it is: debug, not error.

The Task SDK client logs every 404 of an XCom read at error level ("XCom not found") and returns None: here the
expected answer to "has the producer pushed its board yet?". The watcher sensors read the board only once the
producer has started (watcher_trigger.py), but until its pre_execute pushes the first board (after the producer's
DAG parse) a read still finds none. Nor does a sensor's read of Cosmos' per-node keys (and its start-up events)
when the producer ended without pushing any: skipped, as when `plan_selection` failed the run (18 such lines in one
failed run). Only those records, for the board's and the per-node keys, go to debug: any other missing XCom stays
an error.

Upstream: apache/airflow#73175 (open; PR #73201, closed unmerged, moved every such record to warning). Private
name: `airflow.sdk.api.client.log`, the module logger `XComOperations.get` writes to. Triggerer only: its
supervisor makes the sensors' XCom reads.
"""

from __future__ import annotations

from typing import Any

from include.vyapar.runtime.patches.after_import import after_import

CLIENT_MODULE = "airflow.sdk.api.client"
NOT_FOUND_EVENT = "XCom not found"  # XComOperations.get's event


class _BoardNotFoundAtDebug:
    """The client module's logger, with "XCom not found" for the status board logged at debug."""

    def __init__(self, log: Any):
        self._log = log

    def error(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        # not at install: airflow is importing
        from include.vyapar.runtime.patches.status_board import BOARD_KEY, on_board

        key = kw.get("key")
        if event == NOT_FOUND_EVENT and isinstance(key, str) and (key == BOARD_KEY or on_board(key)):
            return self._log.debug(event, *args, **kw)
        return self._log.error(event, *args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


def install() -> None:
    after_import(CLIENT_MODULE, board_not_found_at_debug)


def board_not_found_at_debug(client_module: Any) -> None:
    """Idempotent."""
    log = getattr(client_module, "log", None)
    if isinstance(log, _BoardNotFoundAtDebug):
        return
    if log is None or not hasattr(client_module, "XComOperations"):
        raise RuntimeError(f"patch xcom_not_found_log: {CLIENT_MODULE} has no module logger `log`: it no longer fits")
    client_module.log = _BoardNotFoundAtDebug(log)


def uninstall() -> None:
    """For tests: the client's own logger back."""
    import sys

    client_module = sys.modules.get(CLIENT_MODULE)
    if client_module is not None and isinstance(client_module.log, _BoardNotFoundAtDebug):
        client_module.log = client_module.log._log
