"""Real Airflow runs (`airflow dags test`: Cosmos' task per model) on a fresh AIRFLOW_HOME, real dbt, real DuckDB,
over the worker's built warehouse. The layer DAGs run in schedule order on a real platform:
tests/deployment/test_local_start.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.airflow_runs import dags_test

# Two of the five business DAGs, from facts to a mart and from marts to the ML models: the five are one factory on a
# list of models (tests/dags/test_dag_integrity.py checks each DAG's tasks against its list), and the layer runs
# (tests/deployment/test_local_start.py) build and test every one of those models.
BUSINESS = ["vyapar_daily_sales", "vyapar_customer_segments"]

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("dag_id", BUSINESS)
def test_business_dag_succeeds(session_warehouse, dag_id):
    result = dags_test(dag_id)
    assert result.succeeded, result.output[-6000:]


def test_targeted_rebuild_runs_only_the_selection(session_warehouse):
    result = dags_test("vyapar_staging", conf={"select": "stg_orders", "full_refresh": True})
    assert result.succeeded, result.output[-6000:]
    assert "Targeted rebuild: 1 node(s) selected: stg_orders" in result.output
    assert "--full-refresh" in result.output
    assert "not in this run's selection (stg_clickstream)" in result.output
    assert "--select', 'fqn:vyaparbazaar.staging.stg_orders'" in result.output


def test_two_layer_dags_at_once_never_hit_the_duckdb_lock(session_warehouse):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", f"from tests.airflow_runs import dags_test; r = dags_test('{dag_id}'); "
             "print('STATE=' + r.state); print(r.output)"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        for dag_id in ("vyapar_dimensions", "vyapar_intermediate")
    ]
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    for out in outputs:
        assert "STATE=success" in out, out[-6000:]
        assert "Could not set lock on file" not in out
    assert any("waiting for the warehouse lock" in out for out in outputs), "the two DAGs never overlapped"
