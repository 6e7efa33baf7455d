"""A daily layer that fails halfway keeps serving its last good build: the broken mart's table is as it was (dbt-duckdb
builds in one transaction), the marts that built are new, and the alert says "data as of" the last good build.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from include.vyapar import settings
from include.vyapar.alerting.alert import Alert
from include.vyapar.alerting.config import load_alerting_config
from include.vyapar.alerting.formatting import local_time
from include.vyapar.alerting.producers.callbacks import data_as_of
from include.vyapar.alerting.store import AlertStore
from tests.airflow_runs import dags_test
from tests.alerting_e2e.conftest import run_id_of, task_instance, text_of, wait_for

pytestmark = pytest.mark.slow
DAG_ID = "vyapar_marts"
MARTS = (
    "mart_campaign_performance", "mart_customer_overview", "mart_daily_sales",
    "mart_financial_metrics", "mart_inventory_status", "mart_product_performance",
)  # fmt: skip
# The marts built from order items: removing orders from the facts changes each of them.
FROM_ORDER_ITEMS = ("mart_customer_overview", "mart_daily_sales", "mart_financial_metrics", "mart_product_performance")
REMOVED_ORDERS = 40


def _task_id(mart: str) -> str:
    return f"dbt.{mart}_model_build"


def _node_id(mart: str) -> str:
    return f"model.vyaparbazaar.{mart}"


def _dbt(project: Path, env: dict[str, str], *args: str) -> None:
    proc = subprocess.run(
        [settings.DBT_BIN, *args, "--project-dir", str(project), "--profiles-dir", str(project)],
        env={**os.environ, **env}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


def _contents(warehouse: Path) -> dict[str, list[tuple]]:
    """Every mart's rows (sorted), read as a BI tool would: a read-only connection to the warehouse file."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {mart: con.execute(f"select * from marts.{mart} order by all").fetchall() for mart in MARTS}


def _leftovers(warehouse: Path) -> list[str]:
    """dbt's intermediate and backup relations: none may outlive a build, failed or not."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_name like '%__dbt_tmp%' or table_name like '%__dbt_backup%'"
        ).fetchall()
    return [row[0] for row in rows]


@pytest.fixture(scope="module")
def marts_rig(rig_factory, probe_project, tmp_path_factory):
    """The probe project with a failing post-hook on demand in every mart (VYAPAR_PROBE=break_<mart>), its own
    manifest and warehouse, everything upstream of the marts built by one dbt process."""
    root = tmp_path_factory.mktemp("layer-fallback")
    project = root / "dbt"
    shutil.copytree(probe_project["VYAPAR_DBT_PROJECT_DIR"], project, ignore=shutil.ignore_patterns("target", "logs"))
    for mart in MARTS:
        model = project / "models" / "marts" / f"{mart}.sql"
        # A post-hook runs after the new table has replaced the old one, inside the model's transaction: the latest
        # moment a build can fail, when a non-transactional build would already have overwritten the mart.
        model.write_text(f"{{{{ config(post_hook=\"{{{{ probe_hook('{mart}') }}}}\") }}}}\n" + model.read_text())
    warehouse = root / "warehouse" / "fallback.duckdb"  # not marts.duckdb: the catalog would shadow the schema
    warehouse.parent.mkdir()
    env = {
        **probe_project,
        "VYAPAR_DBT_PROJECT_DIR": str(project),
        "VYAPAR_DBT_MANIFEST": str(project / "target" / "manifest.json"),
        "VYAPAR_DUCKDB_PATH": str(warehouse),
        "VYAPAR_WAREHOUSE_LOCK": str(warehouse.with_suffix(".lock")),
        "AIRFLOW__COSMOS__CACHE_DIR": str(root / "cosmos_cache"),
    }
    full_env = {**os.environ, **env, "VYAPAR_LANDING_DIR": str(settings.LANDING_DIR)}
    subprocess.run([sys.executable, "-m", "include.vyapar.pipeline.manifest"], env=full_env, check=True, capture_output=True)
    _dbt(project, full_env, "run", "--quiet", "--select", "+path:models/marts", "--exclude", "path:models/marts",
         "--target-path", str(root / "build-target"))  # fmt: skip
    rig = rig_factory("layer-fallback")
    rig.project_env = env
    return rig, warehouse


@pytest.fixture(scope="module")
def good_then_broken(marts_rig):
    """Run 1 builds every mart. New facts arrive (the newest orders leave the order facts: a cheap stand-in for a
    night's facts build). Run 2 breaks the mart that ran in the middle of run 1, after others built and before others.
    """
    rig, warehouse = marts_rig
    first = dags_test(DAG_ID, env=rig.env())
    assert first.succeeded, first.output[-4000:]
    first_run = run_id_of(first)
    before = _contents(warehouse)
    assert all(before[mart] for mart in MARTS), {mart: len(rows) for mart, rows in before.items()}

    order = sorted(MARTS, key=lambda mart: task_instance(DAG_ID, first_run, _task_id(mart))["start_date"])
    middle = [mart for mart in order[1:-1] if mart in FROM_ORDER_ITEMS]
    broken = middle[len(middle) // 2]

    with duckdb.connect(str(warehouse)) as con:
        removed = f"select order_id from core.fct_orders order by order_purchase_timestamp desc limit {REMOVED_ORDERS}"
        con.execute(f"delete from core.fct_order_items where order_id in ({removed})")
        con.execute(f"delete from core.fct_orders where order_id in ({removed})")

    second = dags_test(DAG_ID, env=rig.env(probe=f"break_{broken}"))
    assert second.state == "failed", second.output[-4000:]
    alert = wait_for(lambda: [m for m in rig.top_level("#data-oncall") if broken in m.text], 60, "the Slack alert")[0]
    email = wait_for(lambda: rig.emails(broken), 30, "the email")[0]
    return {
        "rig": rig, "warehouse": warehouse, "order": order, "broken": broken, "before": before,
        "after": _contents(warehouse), "first_run": first_run, "second_run": run_id_of(second),
        "alert": alert, "email": email,
    }  # fmt: skip


def test_a_mart_failing_halfway_keeps_its_last_good_rows_and_the_alert_says_data_as_of(good_then_broken):
    run = good_then_broken
    rig, broken, before, after = run["rig"], run["broken"], run["before"], run["after"]
    order = run["order"]
    assert order.index(broken) not in (0, len(order) - 1), order  # marts built before it and after it

    # The broken mart: readable, with exactly its previous rows (no half-written table, nothing left behind).
    ti = task_instance(DAG_ID, run["second_run"], _task_id(broken))
    assert ti["state"] == "failed" and ti["try_number"] == 3, ti
    assert len(after[broken]) == len(before[broken]) and after[broken] == before[broken]
    assert _leftovers(run["warehouse"]) == []

    # The other marts built in the same run: their tables hold the new facts.
    built = [mart for mart in MARTS if mart != broken]
    for mart in built:
        assert task_instance(DAG_ID, run["second_run"], _task_id(mart))["state"] == "success", mart
    changed = [mart for mart in built if after[mart] != before[mart]]
    assert set(changed) >= set(FROM_ORDER_ITEMS) - {broken}, changed

    # "Data as of": the broken mart's last good build, in run 1, in local time (IST).
    good = [r for r in rig.store.node_results_for(_node_id(broken)) if r["run_id"] == run["first_run"] and r["status"] == "success"]
    assert len(good) == 1, good
    first_ti = task_instance(DAG_ID, run["first_run"], _task_id(broken))
    assert first_ti["start_date"] <= good[0]["finished_at"] <= first_ti["end_date"]
    as_of = local_time(good[0]["finished_at"])
    assert as_of.endswith(" IST")

    slack = text_of(run["alert"])
    assert f"Data as of: {as_of}" in run["alert"].text
    assert f"its table still serves the data as of {as_of}, unchanged" in slack
    assert f"*Data as of*\n{as_of}" in slack  # the Block Kit field
    plain, rich = rig.smtp.parts(run["email"])
    assert f"Data as of: {as_of}" in plain and as_of in rich
    assert len(rig.emails(broken)) == 1

    # The DAG's failure callback's alert (folded into the mart's incident) names the same last good build.
    dag_alerts = [
        alert for record in rig.store.list_alerts() if record["dedup_key"] == f"failed_run:dag:{DAG_ID}"
        and (alert := Alert.from_json(record["payload"])).subject == f"{DAG_ID}: DAG run failed"
    ]  # fmt: skip
    assert len(dag_alerts) == 1, dag_alerts
    assert dag_alerts[0].facts["Data as of"] == f"{as_of} (the last good build of {broken}; not rebuilt by this run)"
    print("\n--- the delivered Slack alert ---\n" + run["alert"].text)
    print("--- the folded DAG-run alert's facts ---\n" + json.dumps(dag_alerts[0].facts, indent=1))


INCREMENTAL_PROJECT = """
name: rollback_probe
version: "1.0.0"
config-version: 2
profile: rollback_probe
macro-paths: ["macros"]
"""
INCREMENTAL_PROFILE = """
rollback_probe:
  target: duckdb
  outputs:
    duckdb: {{type: duckdb, path: "{path}", schema: main, threads: 1}}
"""
# Run 2 re-sends keys 2-4: the delete removes keys 2 and 3, then the insert fails on key 3's value ('oops' into an
# integer column), after the delete and after key 2's row was written.
INCREMENTAL_MODEL = """
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='id') }}
{% if is_incremental() %}
select * from (values (2, '21'), (3, 'oops'), (4, '40')) t(id, amount)
{% else %}
select * from (values (1, 10), (2, 20), (3, 30)) t(id, amount)
{% endif %}
"""


def test_a_failed_incremental_delete_insert_rolls_back_whole(tmp_path):
    """The project's delete+insert (macros/delete_insert.sql over dbt-duckdb's) fails in its insert: nothing of it stays."""
    project, warehouse = tmp_path / "project", tmp_path / "rollback.duckdb"
    (project / "models").mkdir(parents=True)
    shutil.copytree(settings.DBT_PROJECT_DIR / "macros", project / "macros")
    (project / "dbt_project.yml").write_text(INCREMENTAL_PROJECT)
    (project / "profiles.yml").write_text(INCREMENTAL_PROFILE.format(path=warehouse))
    (project / "models" / "orders_incremental.sql").write_text(INCREMENTAL_MODEL)
    env = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    _dbt(project, env, "run", "--quiet")
    proc = subprocess.run(
        [settings.DBT_BIN, "run", "--project-dir", str(project), "--profiles-dir", str(project)],
        env={**os.environ, **env}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and "oops" in proc.stdout, proc.stdout[-3000:]
    assert "delete from" in (project / "target" / "run" / "rollback_probe" / "models" / "orders_incremental.sql").read_text()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select id, amount from main.orders_incremental order by id").fetchall() == [(1, 10), (2, 20), (3, 30)]


def test_a_model_that_never_built_says_so_and_a_built_one_gives_its_last_success(tmp_path):
    store = AlertStore(f"sqlite:///{tmp_path / 'alerts.sqlite'}", config=load_alerting_config())
    node = _node_id("mart_daily_sales")
    store.record_node_result(node, "model", "error", 1.0, run_id="manual__1", finished_at=1_796_000_000.0)
    assert data_as_of(store, node) == "no successful build yet"
    store.record_node_result(node, "model", "success", 1.0, run_id="manual__2", finished_at=1_796_003_600.0)
    store.record_node_result(node, "model", "error", 1.0, run_id="manual__3", finished_at=1_796_090_000.0)
    assert data_as_of(store, node) == local_time(1_796_003_600.0) == "2026-11-30 07:23:20 IST"
