"""The triggerer's runner loop (airflow.jobs.triggerer_job_runner.TriggerRunner.arun) sleeps 1 s between passes,
and only a pass hands fired triggers' events on: a watcher model task (ended in the triggerer) ended up to 1 s
after its trigger fired. A shorter loop costs CPU all the time. Here the loop keeps its 1 s and a trigger about to
fire wakes it: `wake_trigger_runner()` ends the current sleep WAKE_DELAY later (the event is queued by then).
No upstream issue filed. Triggerer only."""

from __future__ import annotations

import asyncio
import logging

from include.vyapar.runtime.patches.after_import import after_import

log = logging.getLogger(__name__)

TRIGGERER_MODULE = "airflow.jobs.triggerer_job_runner"
WAKE_DELAY = 0.02


def install() -> None:
    after_import(TRIGGERER_MODULE, wakeable_trigger_runner_sleep)


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
    if not hasattr(triggerer_module.anyio, "move_on_after"):
        raise RuntimeError(f"patch triggerer_wake: {TRIGGERER_MODULE}.anyio has no move_on_after: it no longer fits")
    _sleeps = _WakeableSleeps(triggerer_module.anyio)
    triggerer_module.anyio = _sleeps
    log.info("patch: a firing trigger wakes the trigger runner loop (no 1 s wait for its event)")


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
