"""The DAG folder of the bench's stock platform: the product's layer DAGs (staging .. ml) as a user would build them
with astronomer-cosmos as shipped, to measure the product's runtime against (bench/README.md, "the peers").

Nothing of the product's runtime: no patch (this file does not call `patches.install_for_dags()`, and the platform
that reads this folder has an empty plugins folder, so no `airflow_local_settings` installs the process patches),
no callbacks, no graph rewiring, Airflow's own LocalExecutor (bench/airflow_run.py, `stock=True`). What the DAGs
share with the product is only configuration through Cosmos' public API: the same dbt project (manifest), profile,
per-layer selection and `TestIndirectSelection.BUILDABLE` (a test runs in the layer that builds its last parent, so
each variant runs the same tests).

  vyapar_<layer>__stock_local     ExecutionMode.LOCAL, Cosmos' default: a task per model and one per model's tests
                                  (TestBehavior.AFTER_EACH), dbt in the task's process (InvocationMode.DBT_RUNNER,
                                  Cosmos' choice when dbt is importable); the one-slot warehouse pool, as DuckDB
                                  takes one writer
  vyapar_<layer>__stock_watcher   ExecutionMode.WATCHER with InvocationMode.DBT_RUNNER: one `dbt build` per run
                                  (the producer), a sensor per model and per model's tests
"""

from __future__ import annotations

import os

from airflow.sdk import DAG, task
from cosmos import DbtTaskGroup, ExecutionConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestIndirectSelection

from include.vyapar import settings
from include.vyapar.pipeline import cosmos_config
from include.vyapar.pipeline.dag_factory import START_DATE
from include.vyapar.pipeline.schedules import load_schedules

STOCK = {
    "stock_local": (ExecutionMode.LOCAL, {"pool": settings.WAREHOUSE_POOL}),
    "stock_watcher": (ExecutionMode.WATCHER, {}),
}

for _variant in filter(None, os.environ.get("VYAPAR_BENCH_VARIANTS", "").split(",")):
    _mode, _operator_args = STOCK[_variant]
    for _layer in load_schedules().layers:
        if _layer.lands_raw_batch:
            continue
        with DAG(
            dag_id=f"{_layer.dag_id}__{_variant}", schedule=None, start_date=START_DATE, catchup=False,
            max_active_runs=1, tags=["bench", "stock"],
        ) as _dag:  # fmt: skip
            DbtTaskGroup(
                group_id="dbt",
                project_config=cosmos_config.project_config(),
                profile_config=cosmos_config.profile_config(),
                execution_config=ExecutionConfig(
                    execution_mode=_mode,
                    invocation_mode=InvocationMode.DBT_RUNNER,
                    test_indirect_selection=TestIndirectSelection.BUILDABLE,
                ),
                render_config=RenderConfig(load_method=LoadMode.DBT_MANIFEST, select=list(_layer.select)),
                operator_args=_operator_args,
            )
        globals()[_dag.dag_id] = _dag

with DAG(
    dag_id="vyapar_bench_warmup", schedule=None, start_date=START_DATE, catchup=False, tags=["bench"],
) as warmup_dag:  # as bench/dags: the triggerer's one-off set-up of the execution API, before anything is timed
    from bench.warmup import WarmTheTriggerer

    WarmTheTriggerer(task_id="warm_the_triggerer")

with DAG(
    dag_id="vyapar_bench_floor", schedule=None, start_date=START_DATE, catchup=False, tags=["bench"]
) as floor_dag:  # as bench/dags: what any DAG run costs on this platform

    @task(task_id="noop")
    def noop() -> None:
        """Nothing: the run's time is the scheduler's, the executor's and the task process's."""

    noop()
