"""Real Airflow runs (`airflow dags test`) of every DAG on a fresh AIRFLOW_HOME, real dbt, real DuckDB."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest

from include.vyapar import settings
from tests.airflow_runs import LAYERS_IN_SCHEDULE_ORDER, dags_test

# Two of the five business DAGs, from facts to a mart and from marts to the ML models: the five are one factory on a
# list of models (tests/dags/test_dag_integrity.py checks each DAG's tasks against its list), and the layer runs
# above build and test every one of those models.
BUSINESS = ["vyapar_daily_sales", "vyapar_customer_segments"]

pytestmark = pytest.mark.slow


def _tables() -> dict[str, int]:
    with duckdb.connect(str(settings.DUCKDB_PATH), read_only=True) as con:
        rows = con.sql("select schema_name || '.' || table_name, estimated_size from duckdb_tables()").fetchall()
    return dict(rows)


@pytest.mark.parametrize("dag_id", LAYERS_IN_SCHEDULE_ORDER)
def test_layer_dag_succeeds_in_schedule_order(layer_runs, dag_id):
    assert dag_id in layer_runs, "an earlier layer failed"
    result = layer_runs[dag_id]
    assert result.succeeded, result.output[-6000:]


def test_layers_build_every_model_into_the_warehouse(layer_runs):
    import json

    manifest = json.loads(settings.DBT_MANIFEST_PATH.read_text())
    models = {f"{n['schema']}.{n['alias']}" for n in manifest["nodes"].values()
              if n["resource_type"] == "model" and n["config"]["materialized"] in {"table", "incremental"}}  # fmt: skip
    tables = _tables()
    assert models <= set(tables)
    assert all(tables[m] > 0 for m in models if m.startswith("marts."))


def test_sources_dag_lands_a_new_batch(layer_runs):
    batches = sorted(p.name for p in (settings.LANDING_DIR / "orders").glob("*.parquet"))
    assert len(batches) >= 2, batches


def test_runs_end_with_a_checkpoint_so_the_wal_stays_small(layer_runs):
    wal = settings.DUCKDB_PATH.with_name(settings.DUCKDB_PATH.name + ".wal")
    assert not wal.exists() or wal.stat().st_size < 1_000_000


@pytest.mark.parametrize("dag_id", BUSINESS)
def test_business_dag_succeeds(layer_runs, dag_id):
    result = dags_test(dag_id)
    assert result.succeeded, result.output[-6000:]


def test_targeted_rebuild_runs_only_the_selection(layer_runs):
    result = dags_test("vyapar_staging", conf={"select": "stg_orders", "full_refresh": True})
    assert result.succeeded, result.output[-6000:]
    assert "Targeted rebuild: 1 node(s) selected: stg_orders" in result.output
    assert "--full-refresh" in result.output
    assert "not in this run's selection (stg_clickstream)" in result.output
    assert "--select', 'fqn:vyaparbazaar.staging.stg_orders'" in result.output


def test_two_layer_dags_at_once_never_hit_the_duckdb_lock(layer_runs):
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
