"""apache/airflow#73432 (open; seen on 3.3.2): a dag-processor run that only executes callbacks overwrites the
file's stat with one without `last_finish_time` (apache/airflow#55698 keeps callback runs out of the stale-DAG
clock), so the next time the queue empties the file counts as never parsed and is parsed again, whole. Every task
ended in the triggerer sends a callback (each watcher sensor), so each callback batch cost a full parse of dags/.
Here a callback-only run keeps the file's previous parse time. Dag-processor only."""

from __future__ import annotations

import functools
import logging

from include.vyapar.runtime.patches.after_import import after_import

log = logging.getLogger(__name__)

MANAGER_MODULE = "airflow.dag_processing.manager"


def install() -> None:
    after_import(MANAGER_MODULE, keep_parse_time_on_callback_runs)


def keep_parse_time_on_callback_runs(manager_module) -> None:
    manager_cls = manager_module.DagFileProcessorManager
    original = manager_cls.handle_parsing_result
    if getattr(original, "__vyapar_patch__", False):
        return

    @functools.wraps(original)
    def handle_parsing_result(self, file, proc, *args, **kwargs):
        previous = self._file_stats.get(file)
        last_finish_time = previous.last_finish_time if previous is not None else None
        result = original(self, file, proc, *args, **kwargs)
        current = self._file_stats.get(file)
        callback_only = getattr(proc, "had_callbacks", False) and getattr(proc, "parsing_result", None) is None
        if callback_only and current is not None and current.last_finish_time is None and last_finish_time:
            current.last_finish_time = last_finish_time
        return result

    handle_parsing_result.__vyapar_patch__ = True  # type: ignore[attr-defined]
    manager_cls.handle_parsing_result = handle_parsing_result
    log.info("patch: callback-only dag-processor runs keep the file's last parse time (apache/airflow#73432)")
