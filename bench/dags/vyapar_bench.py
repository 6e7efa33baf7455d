"""The DAG folder of a benchmark session:

- the product's layer DAGs (staging .. ml), built by the product's factory, once per execution variant named in
  VYAPAR_BENCH_VARIANTS (dag id suffix `__<variant>`, variant = `<execution>_<invocation>`, e.g.
  `watcher_subprocess`), so one scheduler compares them on one warehouse. Their cron never fires (29 February):
  unpausing one to trigger it must not add a scheduled run;
- `vyapar_bench_alerts`: tasks that fail at once, timestamping the failure in their error, with the product's
  failure callback (alerts take the product's one delivery path);
- `vyapar_bench_warmup`: one task started and ended in the triggerer (bench/warmup.py), run before anything
  is timed;
- `vyapar_bench_floor`: one task that does nothing: what any DAG run costs on this scheduler (the floor under each
  layer DAG run), and the platform's first run (untimed warm-up) before the measured ones.
"""

from __future__ import annotations

import dataclasses
import os
import time

from airflow.sdk import DAG, task

from include.vyapar.alerting.producers import callbacks
from include.vyapar.pipeline import cosmos_config
from include.vyapar.pipeline.dag_factory import START_DATE, build_dag
from include.vyapar.pipeline.parse_scope import dag_ids_to_build
from include.vyapar.pipeline.schedules import load_schedules
from include.vyapar.runtime import patches

NEVER = "0 0 29 2 *"
patches.install_for_dags()  # as dags/vyaparbazaar_pipelines.py: the version guard, then the dbt tasks' patches
_ONLY = dag_ids_to_build()
_schedules = load_schedules()
_default_execution_config = cosmos_config.execution_config
_default_render_config = cosmos_config.render_config
for _variant in filter(None, os.environ.get("VYAPAR_BENCH_VARIANTS", "").split(",")):
    _execution, _, _invocation = _variant.partition("_")
    cosmos_config.execution_config = lambda e=_execution, i=_invocation: _default_execution_config(e, i)
    cosmos_config.render_config = lambda sel, with_sources=False, e=_execution: _default_render_config(
        sel, with_sources, e
    )
    for _layer in _schedules.layers:
        if _layer.lands_raw_batch:
            continue
        _entry = dataclasses.replace(_layer, name=f"{_layer.name}__{_variant}", cron=NEVER)
        if _ONLY is None or _entry.dag_id in _ONLY:  # a task process builds its own DAG only, as dags/ does
            globals()[_entry.dag_id] = build_dag(_schedules, _entry)
cosmos_config.execution_config = _default_execution_config
cosmos_config.render_config = _default_render_config

FAILURES = int(os.environ.get("VYAPAR_BENCH_ALERT_FAILURES", "20"))
with DAG(
    dag_id="vyapar_bench_alerts",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    default_args={"retries": 0, "on_failure_callback": callbacks.on_task_failure},
    tags=["bench"],
) as alerts_dag:
    previous = None
    for i in range(FAILURES):

        @task(task_id=f"fail_{i:02d}", trigger_rule="all_done")
        def fail() -> None:
            raise RuntimeError(f"bench failure at {time.time():.6f}")

        current = fail()
        if previous is not None:
            previous >> current
        previous = current

with DAG(
    dag_id="vyapar_bench_warmup", schedule=None, start_date=START_DATE, catchup=False, tags=["bench"],
    on_success_callback=lambda context: None,  # the dag-processor runs a callback too, as after each layer run
) as warmup_dag:
    from bench.warmup import WarmTheTriggerer

    WarmTheTriggerer(task_id="warm_the_triggerer")

with DAG(
    dag_id="vyapar_bench_floor", schedule=None, start_date=START_DATE, catchup=False, tags=["bench"]
) as floor_dag:

    @task(task_id="noop")
    def noop() -> None:
        """Nothing: the run's time is the scheduler's, the executor's and the task process's."""

    noop()
