"""Fixes for known Airflow bugs, installed from plugins/airflow_local_settings.py (which every Airflow process
imports at start), each only in the process it concerns, each with the upstream issue it works around.

- apache/airflow#73432 (open; seen on 3.3.2): a dag-processor run that only executes callbacks overwrites the
  file's stat with one without `last_finish_time` (apache/airflow#55698 keeps callback runs out of the stale-DAG
  clock), so the next time the queue empties the file counts as never parsed and is parsed again, whole. Every
  task ended in the triggerer sends a callback (each watcher sensor, success included), so each callback batch
  cost a full parse of dags/: measured in one daily build at 100k events, 11 full parses of the file within 68 s,
  on a 2-core machine running dbt. Here a callback-only run keeps the file's previous parse time.

And one hook Airflow has no setting for:

- The triggerer's runner loop (airflow.jobs.triggerer_job_runner.TriggerRunner.arun) sleeps 1 s between passes,
  and only a pass hands finished triggers' events to the triggerer: a task that ends in the triggerer (each
  watcher model task, include/vyapar/runtime/watcher.py) ended up to 1 s after its trigger fired. A shorter loop costs
  CPU all the time (measured: 0.2 s passes doubled the triggerer's CPU during a 10M build, each pass a round of
  database queries). Here the loop keeps its 1 s, and a trigger about to fire wakes it:
  `wake_trigger_runner()` ends the current sleep a moment later (WAKE_DELAY, so the event is queued by then).
"""

from __future__ import annotations

import asyncio
import functools
import importlib.abc
import importlib.util
import logging
import sys

log = logging.getLogger(__name__)

MANAGER_MODULE = "airflow.dag_processing.manager"
TRIGGERER_MODULE = "airflow.jobs.triggerer_job_runner"


def install(argv: list[str] | None = None) -> None:
    """Install the fixes this process needs (idempotent)."""
    argv = sys.argv if argv is None else argv
    if "dag-processor" in argv[1:2]:
        after_import(MANAGER_MODULE, keep_parse_time_on_callback_runs)
    if "triggerer" in argv[1:2]:
        after_import(TRIGGERER_MODULE, wakeable_trigger_runner_sleep)


def keep_parse_time_on_callback_runs(manager_module) -> None:
    manager_cls = manager_module.DagFileProcessorManager
    original = manager_cls.handle_parsing_result
    if getattr(original, "__vyapar_fix__", False):
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

    handle_parsing_result.__vyapar_fix__ = True  # type: ignore[attr-defined]
    manager_cls.handle_parsing_result = handle_parsing_result
    log.info("airflow_fixes: callback-only dag-processor runs keep the file's last parse time (apache/airflow#73432)")


WAKE_DELAY = 0.02


class _WakeableSleeps:
    """The triggerer module's `anyio`: its `move_on_after` (there only the runner loop's 1 s sleep) is remembered,
    so that `wake_trigger_runner()` can end that sleep early; everything else is anyio's own."""

    def __init__(self, anyio_module):
        self._anyio = anyio_module
        self.scope = None

    def move_on_after(self, delay, *args, **kwargs):
        self.scope = self._anyio.move_on_after(delay, *args, **kwargs)
        return self.scope

    def __getattr__(self, name):
        return getattr(self._anyio, name)


_sleeps: _WakeableSleeps | None = None


def wakeable_trigger_runner_sleep(triggerer_module) -> None:
    global _sleeps
    if isinstance(triggerer_module.anyio, _WakeableSleeps):
        _sleeps = triggerer_module.anyio
        return
    _sleeps = _WakeableSleeps(triggerer_module.anyio)
    triggerer_module.anyio = _sleeps
    log.info("airflow_fixes: a firing trigger wakes the trigger runner loop (no 1 s wait for its event)")


def wake_trigger_runner(delay: float = WAKE_DELAY) -> None:
    """From a trigger, in the triggerer's event loop, about to yield its event: end the runner loop's current sleep
    `delay` seconds from now, so the event goes out then. A no-op outside the triggerer."""
    if _sleeps is None:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return

    def wake() -> None:
        scope = _sleeps.scope if _sleeps is not None else None
        if scope is not None:
            scope.cancel()  # a scope that has already ended ignores it

    loop.call_later(delay, wake)


def after_import(module_name: str, fix) -> None:
    """Run `fix(module)` once `module_name` is imported (now, if it already is)."""
    if module_name in sys.modules:
        fix(sys.modules[module_name])
        return
    if any(isinstance(f, _AfterImport) and f.module_name == module_name for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _AfterImport(module_name, fix))


class _AfterImport(importlib.abc.MetaPathFinder):
    def __init__(self, module_name: str, fix):
        self.module_name, self.fix = module_name, fix

    def find_spec(self, fullname, path, target=None):
        if fullname != self.module_name:
            return None
        sys.meta_path.remove(self)  # find the real spec, once
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        loader, fix = spec.loader, self.fix
        original_exec = loader.exec_module

        def exec_module(module):
            original_exec(module)
            try:
                fix(module)
            except Exception:  # noqa: BLE001 -- a fix that no longer fits this Airflow must not stop the process
                log.exception("airflow_fixes: could not apply the fix to %s", fullname)

        loader.exec_module = exec_module
        return spec
