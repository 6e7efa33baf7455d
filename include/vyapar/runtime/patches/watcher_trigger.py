"""Cosmos watcher execution, without a worker process per model.

In watcher mode one producer task runs the DAG's `dbt build`, and each model keeps a task in the UI: a sensor that
waits for that model's status (the producer publishes it as XCom). Cosmos' sensors are deferrable, so each one
still takes two worker processes (start, poke once, defer; then resume to finish): on two cores, thirty-odd task
processes per DAG run competed with the build they were watching. Here every sensor starts in the triggerer and
ends there (Airflow 3's `start_from_trigger` and task-end events): no worker process unless something needs one.

What still resumes on a worker, through Cosmos' own `execute_complete`: a producer that failed or was skipped
before reporting the model, and a retry (Cosmos' fallback there runs dbt for that model itself). A model that is
not in a targeted run's selection (plan_selection) is skipped in the triggerer. Task callbacks still run: Airflow
sends them to the dag-processor for a task ended by its trigger.

The sensors of a run all start at once and each ends on its own model's result (`end_each_sensor_on_its_own_result`):
the graph keeps the models' lineage, but a sensor no longer waits for the sensors upstream of it to end first. The
producer's single `dbt build` already orders the models; waiting added a scheduler-and-triggerer round trip (1-2 s)
per level of lineage after the build had finished. Where a sensor does depend on its upstream tasks it waits for them
itself, as the `none_failed` rule would have, before running dbt on a worker: a retry, a targeted run, a producer
that failed before reporting, and a model dbt skipped because a model upstream failed: once that model's task has
succeeded on a retry, this one builds its model; if it failed for good, this one ends skipped (only the model that
failed alerts).

Upstream: astronomer/astronomer-cosmos#2811 (consumers started in the triggerer). Private names: Cosmos'
`cosmos.operators._watcher` (WatcherTrigger, BaseConsumerSensor, its XCom keys and states) and the graph Cosmos
builds. Patches nothing when imported: dag_factory calls the rewiring functions on each DAG it builds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any, ClassVar

from airflow.triggers.base import StartTriggerArgs, TaskFailedEvent, TaskSkippedEvent, TaskSuccessEvent, TriggerEvent
from airflow.utils.state import State
from cosmos.listeners.dag_run_listener import EventStatus
from cosmos.operators._watcher.aggregation import get_tests_status_xcom_key
from cosmos.operators._watcher.base import BaseConsumerSensor
from cosmos.operators._watcher.state import PRODUCER_FINAL_STATES, get_status_xcom_key, is_dbt_node_status_failed
from cosmos.operators._watcher.triggerer import WatcherEventReason, WatcherTrigger

from include.vyapar.runtime.patches.status_board import BOARD_KEY, on_board
from include.vyapar.runtime.patches.triggerer_wake import wake_trigger_runner

PLAN_TASK_ID = "plan_selection"  # dag_factory's task resolving a targeted run's `select` param
# Poll the producer's progress every half second, not Cosmos' 10: the figure a sensor can lag the model it watches.
# The polls of a run's sensors share two reads (the producer's state and its status board), at most every
# PRODUCER_STATE_TTL / BOARD_TTL seconds.
POKE_SECONDS = 0.5
# The producer's states in which it has pushed no board yet (its TI's state as a string; None: not scheduled).
PRODUCER_NOT_STARTED = frozenset({None, "none", "removed", "scheduled", "queued", "upstream_failed"})


class TriggererWatcherTrigger(WatcherTrigger):
    """Cosmos' WatcherTrigger that ends its task itself: success, skip and a failed model end in the triggerer.

    Started by the scheduler (start_from_trigger), its kwargs are fixed when the DAG is parsed: the run it watches
    comes from the task instance the triggerer attaches before running it."""

    # The producer's state and its status board (status_board.py), shared by every sensor of its
    # run in this triggerer: twenty sensors polling their own keys queued one behind another (each read a round
    # trip through the triggerer's supervisor and the API server) and took the CPU the build needed.
    # Each read is an API request (the API server and the triggerer take CPU the build needs): while a build goes
    # on, the reads space out with its age (AGE_FRACTION of it, up to MAX_TTL), so a sensor lags its model by at
    # most ~5% of the time it has waited: 0.25 s in a 5 s build, 2 s in a 100 s one.
    PRODUCER_STATE_TTL = 1.0
    BOARD_TTL = 0.25
    MAX_TTL = 2.0
    AGE_FRACTION = 0.05
    _first_reads: ClassVar[dict[tuple[str, str, str], float]] = {}
    _producer_states: ClassVar[dict[tuple[str, str, str], tuple[float, Any]]] = {}
    _boards: ClassVar[dict[tuple[str, str, str], tuple[float, Any]]] = {}
    _producer_final_at: ClassVar[dict[tuple[str, str, str], float]] = {}
    _fetch_locks: ClassVar[dict[tuple[str, tuple[str, str, str], int], asyncio.Lock]] = {}

    def __init__(self, *args: Any, wait_for: list[str] | None = None, upstream_models: list[str] | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        """`wait_for`: the tasks this sensor depends on (its upstream tasks in the graph, and a test sensor's model
        task); `upstream_models`: the models in this build whose failure makes dbt skip this sensor's node."""
        super().__init__(*args, **kwargs)
        self.wait_for = list(wait_for or [])
        self.upstream_models = list(upstream_models or [])

    def serialize(self) -> tuple[str, dict[str, Any]]:
        _, kwargs = super().serialize()
        kwargs.update(wait_for=self.wait_for, upstream_models=self.upstream_models)
        return f"{__name__}.{type(self).__name__}", kwargs

    @property
    def _run_key(self) -> tuple[str, str, str]:
        return (self.dag_id, self.run_id, self.producer_task_id)

    async def _shared(
        self,
        name: str,
        store: dict,
        ttl: float,
        fetch: Callable[[], Awaitable[Any]],
        fresh_after: float | None = None,
    ) -> tuple[float, Any]:
        """A read shared by the run's sensors: (when the read started, value); one read at a time per run."""
        key = self._run_key
        if len(store) > 256:  # runs long finished
            store.clear()
            self._fetch_locks.clear()
            self._first_reads.clear()
        lock = self._fetch_locks.setdefault((name, key, id(asyncio.get_running_loop())), asyncio.Lock())
        async with lock:
            cached = store.get(key)
            now = time.monotonic()
            age = now - self._first_reads.setdefault(key, now)
            ttl = max(ttl, min(self.MAX_TTL, self.AGE_FRACTION * age))
            if cached and now - cached[0] < ttl and (fresh_after is None or cached[0] >= fresh_after):
                return cached
            store[key] = (now, await fetch())
            return store[key]

    async def _get_producer_task_status(self) -> str | None:
        started, state = await self._shared(
            "producer", self._producer_states, self.PRODUCER_STATE_TTL, super()._get_producer_task_status
        )
        if state in PRODUCER_FINAL_STATES:
            if len(self._producer_final_at) > 256:
                self._producer_final_at.clear()
            self._producer_final_at.setdefault(self._run_key, started)
        return state

    async def _board(self) -> dict[str, Any] | None:
        # No board before the producer runs (its pre_execute pushes the first): while it waits, a read was only an
        # API request answered 404, which the Task SDK client logs as an error (xcom_not_found_log.py).
        if await self._get_producer_task_status() in PRODUCER_NOT_STARTED:
            return None
        # Once the producer is seen final, only a board read after that counts: its last push precedes its end.
        fresh_after = self._producer_final_at.get(self._run_key)
        _, board = await self._shared(
            "board", self._boards, self.BOARD_TTL, lambda: self.get_xcom_val_af3(BOARD_KEY), fresh_after
        )
        return board if isinstance(board, dict) else None

    async def get_xcom_val(self, key: str) -> Any | None:
        """Per-node keys from the run's status board; others (and a producer without a board: an earlier version,
        or a retry's restored XComs, read once it has ended) as Cosmos reads them."""
        if not on_board(key):
            return await super().get_xcom_val(key)
        board = await self._board()
        if board is not None:
            return board.get(key)
        if self._run_key in self._producer_final_at:
            return await super().get_xcom_val(key)
        return None

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async for event in self._events():
            wake_trigger_runner()  # the triggerer hands the event on now, not at its next pass (up to 1 s)
            yield event

    async def _events(self) -> AsyncIterator[TriggerEvent]:
        ti = self.task_instance
        if ti is not None:
            self.dag_id = self.dag_id or ti.dag_id
            self.run_id = self.run_id or ti.run_id
            if (getattr(ti, "try_number", 1) or 1) > 1:
                # A retry (or a cleared task): Cosmos runs dbt for this model itself, on a worker, as its own
                # sensors do on a retry; the producer's run is over. First the tasks it depends on (cleared with
                # it, they run their own dbt first).
                yield await self._on_a_worker_after_upstream(_run_dbt_on_a_worker())
                return
        async for event in super().run():
            payload = event.payload if isinstance(event.payload, dict) else {}
            status = payload.get("status")
            if status in (EventStatus.SUCCESS, EventStatus.SKIPPED, EventStatus.FAILED):
                await self._log_node_result()
            node_failed = status == EventStatus.FAILED and payload.get("reason") == WatcherEventReason.NODE_FAILED
            if status == EventStatus.SUCCESS:
                yield TaskSuccessEvent()
            elif status == EventStatus.SKIPPED or node_failed:
                if failed := await self._failed_upstream_in_build():
                    # dbt skipped it because a model upstream failed (Cosmos reports such a node failed): that
                    # model's task fails and alerts, and may yet succeed on a retry. This one waits for it, as
                    # `none_failed` would: then it runs dbt itself on a worker, or ends skipped.
                    self.log.warning("dbt skipped %s: upstream %s did not pass in this build; waiting for the "
                                     "upstream task(s)", self.model_unique_id, ", ".join(failed))  # fmt: skip
                    yield await self._on_a_worker_after_upstream(_run_dbt_on_a_worker())
                elif node_failed:
                    # The producer fails with it and alerts (its dbt results name the model and its error).
                    yield TaskFailedEvent()
                else:
                    yield TaskSkippedEvent()
            else:
                yield await self._on_a_worker_after_upstream(event)
            return

    async def _on_a_worker_after_upstream(self, event: TriggerEvent) -> TriggerEvent:
        """The event that resumes the task on a worker (Cosmos decides there: a fallback dbt run of the model, or a
        failure), once every task it depends on has ended; skipped if one of those failed, or if the model is not
        in the run's selection."""
        if failed := await self._failed_upstream_tasks():
            self.log.warning("%s not run: upstream %s failed", self.model_unique_id, ", ".join(failed))
            return TaskSkippedEvent()
        if not await self._selected():  # the producer was skipped (a targeted run) and this model is not selected
            return TaskSkippedEvent()
        return event

    async def _failed_upstream_tasks(self) -> list[str]:
        """Wait until the tasks in `wait_for` have all ended; those of them that failed."""
        if not self.wait_for:
            return []
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
        from asgiref.sync import sync_to_async

        while True:
            states = await sync_to_async(RuntimeTaskInstance.get_task_states)(
                dag_id=self.dag_id, task_ids=self.wait_for, run_ids=[self.run_id]
            )
            got = {t: str(getattr(s, "value", s)) for t, s in (states.get(self.run_id) or {}).items()}
            if all(got.get(t) in State.finished for t in self.wait_for):
                return sorted(t for t in self.wait_for if got[t] in State.failed_states)
            await asyncio.sleep(self.poke_interval)

    async def _failed_upstream_in_build(self) -> list[str]:
        """The models of `upstream_models` that failed in the producer's build, or whose tests did not pass (as
        Cosmos aggregates them: a test of several models that dbt skipped counts against each of them)."""
        failed = []
        for model in self.upstream_models:
            status = await self.get_xcom_val(get_status_xcom_key(model))
            if isinstance(status, dict):
                status = status.get("status")
            tests = await self.get_xcom_val(get_tests_status_xcom_key(model))
            if is_dbt_node_status_failed(status) or is_dbt_node_status_failed(tests):
                failed.append(model)
        return failed

    async def _log_node_result(self) -> None:
        """The model's dbt result (status, times and, when it failed, dbt's error) in this task's log, from the
        producer's status board; the producer's log has the whole build's output. (Cosmos' own logging of it goes
        to its module logger, which the trigger's log does not show.)"""
        try:
            from cosmos.operators._watcher.state import DBT_FAILED_STATUSES, get_dbt_event_xcom_key

            event = await self.get_xcom_val(get_dbt_event_xcom_key(self.model_unique_id))
            if isinstance(event, dict):
                status = str(event.get("status"))
                if status in DBT_FAILED_STATUSES and event.get("msg"):
                    self.log.error("dbt %s %s: %s", self.model_unique_id, status, event["msg"])
                self.log.info(
                    "dbt %s: %s (started %s, finished %s)",
                    self.model_unique_id, status, event.get("start_time"), event.get("finish_time"),
                )  # fmt: skip
        except Exception:  # noqa: BLE001 — a log line must never decide the task's state
            self.log.info("dbt result of %s: see the producer task's log", self.model_unique_id)
        self.log.info("dbt output of the whole build: task %s of this run", self.producer_task_id)

    async def _selected(self) -> bool:
        """Whether this sensor's model is in the run's selection (plan_selection's XCom; None: every model)."""
        from airflow.sdk.execution_time.xcom import XCom
        from asgiref.sync import sync_to_async

        selected = await sync_to_async(XCom.get_one)(
            run_id=self.run_id, key="return_value", task_id=PLAN_TASK_ID, dag_id=self.dag_id, map_index=-1
        )
        return selected is None or self.model_unique_id.rsplit(".", 1)[-1] in selected


def _run_dbt_on_a_worker() -> TriggerEvent:
    """The event that resumes a sensor on a worker where Cosmos runs dbt for its model itself (its fallback)."""
    return TriggerEvent({"status": EventStatus.FAILED, "reason": WatcherEventReason.PRODUCER_SKIPPED})


def _done_gates(tasks) -> list:
    """Cosmos' `dbt_producer_watcher_done` gate among `tasks` (one per watcher task group)."""
    from cosmos.constants import PRODUCER_WATCHER_DONE_TASK_ID

    return [t for t in tasks if t.task_id.rsplit(".", 1)[-1] == PRODUCER_WATCHER_DONE_TASK_ID]


def start_sensors_in_triggerer(tasks, warehouse_pool: str) -> int:
    """Every Cosmos watcher sensor among `tasks`: started and ended in the triggerer, out of the one-slot warehouse
    pool (they never open DuckDB; in it they waited for the producer, which holds it for the whole build).
    Returns how many were changed; local execution has none."""
    changed = 0
    for t in tasks:
        if not isinstance(t, BaseConsumerSensor):
            continue
        if t.pool == warehouse_pool:
            t.pool = "default_pool"
        t.poke_interval = POKE_SECONDS
        t.start_trigger_args = StartTriggerArgs(
            trigger_cls=f"{__name__}.TriggererWatcherTrigger",
            trigger_kwargs={
                "model_unique_id": t.model_unique_id,
                "producer_task_id": t.producer_task_id,
                "dag_id": t.dag_id,
                "run_id": "",  # filled in from the task instance in the triggerer
                "map_index": -1,
                "poke_interval": float(POKE_SECONDS),
                "is_test_sensor": bool(t.is_test_sensor),
            },
            next_method="execute_complete",
            timeout=t.execution_timeout or timedelta(hours=1),
        )
        t.start_from_trigger = True
        changed += 1
    return changed


def watch_tests_beside_their_model(tasks) -> int:
    """A model's test sensor waits beside its model's sensor (same upstream tasks), and downstream models' sensors
    wait for the model's sensor, not for its test sensor. In watcher mode the producer's `dbt build` already orders
    the nodes (and skips a model downstream of a failed test: its sensor ends skipped); each sensor waiting for
    another only added a scheduler-and-triggerer round trip (~2.5 s) after the build had finished. The graph keeps
    the models' lineage. Returns how many test sensors were moved."""
    by_id = {t.task_id: t for t in tasks}
    moved = 0
    for test in [t for t in tasks if isinstance(t, BaseConsumerSensor) and t.is_test_sensor]:
        runs = [
            by_id[u]
            for u in test.upstream_task_ids
            if isinstance(by_id.get(u), BaseConsumerSensor)
            and not by_id[u].is_test_sensor
            and by_id[u].model_unique_id == test.model_unique_id
        ]
        if len(runs) != 1:
            continue
        run = runs[0]
        for down_id in list(test.downstream_task_ids):
            down = by_id[down_id]
            if isinstance(down, BaseConsumerSensor):  # a downstream model: after the model itself
                test.downstream_task_ids.discard(down_id)
                down.upstream_task_ids.discard(test.task_id)
                run.set_downstream(down)
        run.downstream_task_ids.discard(test.task_id)
        test.upstream_task_ids.discard(run.task_id)
        for up_id in run.upstream_task_ids:
            by_id[up_id].set_downstream(test)
        moved += 1
    return moved


def start_producer_beside(tasks, plan_task_id: str = PLAN_TASK_ID) -> bool:
    """The producer starts with plan_selection, not after it (one scheduling round trip less per DAG run, ~1 s):
    it takes plan_selection's own upstream tasks instead (the sources DAG lands its batch first). Its pre_execute
    skips it on a targeted run from the `select` param itself (dag_factory._skip_unless_selected); the sensors
    still wait for plan_selection, whose XCom tells them whether their model is selected. Returns whether the
    producer was moved."""
    from cosmos.operators.watcher import DbtProducerWatcherOperator

    by_id = {t.task_id: t for t in tasks}
    plan = by_id.get(plan_task_id)
    producers = [t for t in tasks if isinstance(t, DbtProducerWatcherOperator)]
    if plan is None or len(producers) != 1 or plan_task_id not in producers[0].upstream_task_ids:
        return False
    producer = producers[0]
    producer._vyapar_producer = True
    producer.upstream_task_ids.discard(plan_task_id)
    plan.downstream_task_ids.discard(producer.task_id)
    for up_id in plan.upstream_task_ids:
        by_id[up_id].set_downstream(producer)
    return True


def end_each_sensor_on_its_own_result(tasks) -> int:
    """Every watcher sensor starts with the run (trigger rule `always`) and ends on its own model's result; the
    tasks it depends on go to its trigger (`wait_for`: its upstream tasks and, for a test sensor, its model's task;
    `upstream_models`: the models of this build whose failure makes dbt skip its node). Call after the graph's last
    rewiring. Returns how many sensors were changed.

    A run's state comes from its leaf tasks: a model task that failed for good with models downstream of it (they
    end skipped) would no longer fail the run. Cosmos' done gate (`none_failed`, settled by the scheduler) becomes
    the run's outcome: downstream of every sensor and of plan_selection, it ends upstream_failed, and the run
    failed, when any of them failed."""
    from airflow.task.trigger_rule import TriggerRule

    by_id = {t.task_id: t for t in tasks}
    sensors = [t for t in tasks if isinstance(t, BaseConsumerSensor) and t.start_trigger_args is not None]
    model_task = {t.model_unique_id: t.task_id for t in sensors if not t.is_test_sensor}
    for t in sensors:
        wait_for = set(t.upstream_task_ids)
        models = {by_id[u].model_unique_id for u in wait_for if isinstance(by_id.get(u), BaseConsumerSensor)}
        if t.is_test_sensor and t.model_unique_id in model_task:
            wait_for.add(model_task[t.model_unique_id])
            models.add(t.model_unique_id)
        if PLAN_TASK_ID in by_id:  # its XCom says whether the model is selected: read only once it has ended
            wait_for.add(PLAN_TASK_ID)
        t.trigger_rule = TriggerRule.ALWAYS
        t.start_trigger_args.trigger_kwargs.update(wait_for=sorted(wait_for), upstream_models=sorted(models))
    gates = _done_gates(tasks)
    if sensors and len(gates) == 1:
        gates[0].set_upstream([*sensors, *([by_id[PLAN_TASK_ID]] if PLAN_TASK_ID in by_id else [])])
    return len(sensors)


def settle_the_done_gate_without_a_worker(tasks) -> int:
    """Cosmos' `dbt_producer_watcher_done` gate (an EmptyOperator absorbing a skipped producer's state) inherits
    the DAG's task callbacks from default_args, and an EmptyOperator with an on_success_callback is run by a worker
    instead of being marked done by the scheduler: measured, it ended 1.2 s after the producer, the last task of
    the run. It never fails on its own (nothing to alert or resolve): without its success callbacks the scheduler
    settles it. Returns how many gates were changed."""
    changed = 0
    for t in _done_gates(tasks):
        if t.inherits_from_empty_operator:
            t.on_success_callback = None
            t.on_execute_callback = None
            changed += 1
    return changed
