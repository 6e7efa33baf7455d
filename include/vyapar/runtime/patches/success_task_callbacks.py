"""Airflow 3.3.2 queues a TaskCallbackRequest for every task that a trigger ends with success
(`airflow.models.trigger.handle_event_submit`, a TaskSuccessEvent), and the dag-processor parses the task's DAG file
for it, only to drop it: `airflow.dag_processing.processor._execute_task_callbacks` runs failure callbacks alone
("Task callback requested but is not a failure callback"; TaskCallbackRequest's docstring: only failure callbacks
are run via the dag-processor). Every watcher model sensor ends in the triggerer, so every model of a layer run
cost the dag-processor one parse of the DAG file, during the run, on the cores dbt runs on: 43 parses for 57 such
requests in one daily build at 10M events (bench/README.md). Here the dag-processor drops such a request before it
queues the file: exactly the requests the processor would drop after the parse. No upstream issue filed.
Dag-processor only."""

from __future__ import annotations

import functools
import logging

from include.vyapar.runtime.patches.after_import import after_import

log = logging.getLogger(__name__)

MANAGER_MODULE = "airflow.dag_processing.manager"


def install() -> None:
    after_import(MANAGER_MODULE, drop_success_task_callbacks)


def runs_in_the_dag_processor(request) -> bool:
    """What `_execute_task_callbacks` acts on: every request but a task's non-failure one."""
    from airflow.callbacks.callback_requests import TaskCallbackRequest

    return not isinstance(request, TaskCallbackRequest) or request.is_failure_callback


def drop_success_task_callbacks(manager_module) -> None:
    manager_cls = manager_module.DagFileProcessorManager
    original = getattr(manager_cls, "_add_callback_to_queue", None)
    if original is None:
        raise RuntimeError(f"patch success_task_callbacks: {MANAGER_MODULE}.DagFileProcessorManager has no "
                           "_add_callback_to_queue: it no longer fits")  # fmt: skip
    if getattr(original, "__vyapar_patch__", False):
        return

    @functools.wraps(original)
    def _add_callback_to_queue(self, request):
        if not runs_in_the_dag_processor(request):
            return None  # the processor would parse the DAG file, then drop the request
        return original(self, request)

    _add_callback_to_queue.__vyapar_patch__ = True  # type: ignore[attr-defined]
    manager_cls._add_callback_to_queue = _add_callback_to_queue
    log.info("patch: a task's success callback request (never run by the dag-processor) no longer parses its file")
