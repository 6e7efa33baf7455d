"""The platform's warm-up before anything is timed (bench/dags: `vyapar_bench_warmup`).

The triggerer's first request to Airflow's execution API builds that API's versioned routes (Cadwyn): profiled,
11.6 CPU seconds, which landed inside the first measured layer run (staging), on the same two cores as its dbt
build. A running deployment pays it once per triggerer start; the benchmark measures the steady state, so the
warm-up runs one task that starts in the triggerer and reads an XCom through that API there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator
from airflow.triggers.base import BaseTrigger, StartTriggerArgs, TaskSuccessEvent, TriggerEvent


class WarmupTrigger(BaseTrigger):
    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{__name__}.{type(self).__name__}", {}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow.sdk.execution_time.xcom import XCom
        from asgiref.sync import sync_to_async

        ti = self.task_instance
        await sync_to_async(XCom.get_one)(
            run_id=ti.run_id, key="return_value", task_id=ti.task_id, dag_id=ti.dag_id, map_index=-1
        )
        yield TaskSuccessEvent()


class WarmTheTriggerer(BaseOperator):
    """Starts and ends in the triggerer (as the watcher sensors do), after one execution-API read."""

    start_from_trigger = True
    start_trigger_args = StartTriggerArgs(
        trigger_cls=f"{__name__}.WarmupTrigger",
        trigger_kwargs={},
        next_method="execute_complete",
        next_kwargs=None,
        timeout=timedelta(minutes=10),
    )

    def execute(self, context: Any) -> None:  # only if the triggerer is bypassed
        return None

    def execute_complete(self, context: Any, event: Any = None) -> None:
        return None
