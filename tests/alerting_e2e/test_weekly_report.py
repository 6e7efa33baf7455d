"""The weekly status report, from a generated fortnight of history (Airflow metadata rows, alert store rows, the
landing ledger): the full report by email, a summary line with the health view's link to Slack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
import sqlalchemy as sa

from include.vyapar import settings
from include.vyapar.alerting import lineage
from include.vyapar.alerting.producers import weekly
from tests.alerting.conftest import fake_slack, fake_smtp, harness  # noqa: F401 — fixtures
from tests.conftest import ARTIFACTS, REPO_ROOT

NOW = datetime(2026, 11, 30, 3, 30, tzinfo=UTC)  # Monday 09:00 IST
WEEK_START, PREVIOUS_START = NOW - timedelta(days=7), NOW - timedelta(days=14)
ORDERS_GAP = (NOW - timedelta(days=3), 6)  # orders skips six hourly landings from here: 5 hours over 2 h old


def _runs(dag_id: str, start: datetime, every: timedelta, count: int, seconds, failed=()) -> list[dict]:
    rows = []
    for n in range(count):
        begin = start + n * every + timedelta(minutes=5)
        rows.append({
            "dag_id": dag_id, "run_id": f"scheduled__{begin:%Y-%m-%dT%H:%M}", "run_type": "scheduled",
            "state": "failed" if n in failed else "success", "logical_date": begin, "run_after": begin,
            "start_date": begin, "end_date": begin + timedelta(seconds=seconds(n)), "queued_at": begin,
        })  # fmt: skip
    return rows


@pytest.fixture
def metadata_history(airflow_db):  # noqa: F811
    """Two weeks of DagRuns (and the failed TaskInstances of the failed ones) in the Airflow metadata database."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    hour, day = timedelta(hours=1), timedelta(days=1)
    runs = (
        # sources, this week: 168 hourly runs, 4 failed; 150 of the rest take 60 s, 14 take 100 s
        _runs("vyapar_sources", WEEK_START, hour, 168, lambda n: 100 if n >= 154 else 60, failed={10, 20, 30, 40})
        + _runs("vyapar_sources", PREVIOUS_START, hour, 168, lambda n: 50)
        + _runs("vyapar_marts", WEEK_START, day, 7, lambda n: 300, failed={3})
        + _runs("vyapar_marts", PREVIOUS_START, day, 7, lambda n: 240)
    )
    failed = [r for r in runs if r["state"] == "failed"]
    with create_session() as session:
        session.execute(sa.delete(TaskInstance.__table__).where(TaskInstance.dag_id.in_(["vyapar_sources", "vyapar_marts"])))
        session.execute(sa.delete(DagRun.__table__).where(DagRun.dag_id.in_(["vyapar_sources", "vyapar_marts"])))
        session.execute(sa.insert(DagRun.__table__), runs)
        session.execute(sa.insert(TaskInstance.__table__), [
            {"dag_id": r["dag_id"], "run_id": r["run_id"], "map_index": -1, "pool": "default_pool", "try_number": 3,
             "task_id": "land_raw_batch" if r["dag_id"] == "vyapar_sources" else "dbt.mart_daily_sales_model_build",
             "state": "failed", "start_date": r["start_date"], "end_date": r["end_date"]}
            for r in failed
        ])  # fmt: skip
    yield runs


@pytest.fixture
def landing_ledger(tmp_path, monkeypatch):
    """Every raw table lands every hour; orders too, except six hourly landings missed three days ago."""
    gap_start, missed = ORDERS_GAP
    graph = lineage.manifest()
    every_hour = {"customers"} | {n["name"] for n in graph.nodes.values() if n.get("resource_type") == "source"} - {"orders"}
    rows = []
    at = PREVIOUS_START - timedelta(hours=3) + timedelta(minutes=35)  # hh:05 IST-aligned: 35 min past the hour UTC
    while at < NOW:
        rows += [(table, at) for table in sorted(every_hour)]
        if not (gap_start <= at < gap_start + timedelta(hours=missed)):
            rows.append(("orders", at))
        at += timedelta(hours=1)
    ledger = tmp_path / "landing" / "_batches"
    ledger.mkdir(parents=True)
    con = duckdb.connect()
    con.execute("create table ledger (table_name varchar, _loaded_at timestamp)")
    con.executemany("insert into ledger values (?, ?)", [(t, a.replace(tzinfo=None)) for t, a in rows])
    con.execute(f"copy ledger to '{ledger / 'batches.parquet'}' (format parquet)")
    monkeypatch.setattr(settings, "LANDING_DIR", tmp_path / "landing")


def _store_history(store) -> None:
    """Incidents (opened this week and the week before) and dbt test results in the alert store."""
    h = 3600
    incidents = [  # (kind, severity, opened, hours to resolve or None)
        ("failed_run", "high", NOW - timedelta(days=5), 1), ("failed_run", "high", NOW - timedelta(days=4), 2),
        ("failed_run", "high", NOW - timedelta(days=2), 6), ("stale_data", "high", ORDERS_GAP[0], 5),
        ("slow", "low", NOW - timedelta(days=1), 0.5), ("slow", "low", NOW - timedelta(hours=5), None),
        ("failed_run", "high", NOW - timedelta(days=10), 1),  # the week before: not in this report
    ]  # fmt: skip
    with store.engine.begin() as conn:
        for n, (kind, severity, opened, hours) in enumerate(incidents):
            conn.execute(sa.insert(store.incidents).values(
                dedup_key=f"{kind}:history:{n}", status="open" if hours is None else "resolved", kind=kind,
                severity=severity, root_alert_id=0, opened_at=opened.timestamp(), last_seen_at=opened.timestamp(),
                resolved_at=None if hours is None else opened.timestamp() + hours * h,
            ))  # fmt: skip
        results = (
            [("test.vyaparbazaar.not_null_stg_orders_order_id", "fail", NOW - timedelta(days=d)) for d in (1, 2, 3)]
            + [("test.vyaparbazaar.unique_stg_customers_customer_id", "error", NOW - timedelta(days=2))]
            + [("test.vyaparbazaar.unique_stg_customers_customer_id", "pass", NOW - timedelta(days=1))]
            + [("test.vyaparbazaar.accepted_values_stg_orders_status", "fail", NOW - timedelta(days=9))]
        )
        for node_id, status, finished in results:
            conn.execute(sa.insert(store.node_results).values(
                node_id=node_id, resource_type="test", status=status, seconds=0.2, failures=1, dag_id="vyapar_staging",
                run_id="scheduled__x", task_id="dbt.test", finished_at=finished.timestamp(),
            ))  # fmt: skip


def test_weekly_report_emails_the_weeks_figures_and_posts_a_summary_line(
    harness, metadata_history, landing_ledger  # noqa: F811
):
    _store_history(harness.store)
    summary = weekly.summarize(NOW)

    assert summary["per_dag"]["vyapar_sources"] == {"runs": 168, "succeeded": 164, "rate": 164 / 168}
    assert summary["per_dag"]["vyapar_marts"] == {"runs": 7, "succeeded": 6, "rate": 6 / 7}
    sources = summary["layers"]["sources"]
    assert (sources["this"]["p50"], sources["this"]["p95"]) == (60, 100)
    assert (sources["previous"]["p50"], sources["previous"]["p95"]) == (50, 50)
    assert summary["layers"]["marts"]["this"]["p50"] == 300 and summary["layers"]["marts"]["previous"]["p50"] == 240
    assert summary["freshness"]["customers"] == 1.0
    assert summary["freshness"]["orders"] == pytest.approx(163 / 168)
    failed_runs = next(a for a in summary["alerts"] if a["kind"] == "failed_run")
    assert (failed_runs["count"], failed_runs["resolved"], failed_runs["median_hours"], failed_runs["max_hours"]) == (3, 3, 2, 6)
    slow = next(a for a in summary["alerts"] if a["kind"] == "slow")
    assert (slow["count"], slow["resolved"], slow["median_hours"]) == (2, 1, 0.5)
    assert summary["failed_tests"] == [("not_null_stg_orders_order_id", 3), ("unique_stg_customers_customer_id", 1)]
    assert summary["failed_tasks"][0] == (("vyapar_sources", "land_raw_batch"), 4)

    email_result, slack_result = weekly.send(NOW)
    assert email_result.delivery_ids and slack_result.delivery_ids
    harness.drain()

    [email] = harness.smtp.messages
    plain, html = harness.smtp.parts(email)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "weekly_report.html").write_text(html)
    assert "Weekly pipeline report 2026-11-23 to 2026-11-30 — 175 runs, success 97.1%" in email["Subject"]
    assert "sources 97.6% (164/168)" in html and "marts 85.7% (6/7)" in html
    assert "sources p50 60s (+20%), p95 100s (+100%) (week before 50s / 50s)" in html
    assert "marts p50 300s (+25%)" in html
    assert "orders 97.0%" in html and "customers 100.0%" in html
    assert "failed_run/high 3 (3 resolved, median 2.0 h, max 6.0 h to resolve)" in html
    assert "stale_data/high 1 (1 resolved, median 5.0 h" in html
    assert "slow/low 2 (1 resolved, median 0.5 h" in html
    assert "not_null_stg_orders_order_id 3×, unique_stg_customers_customer_id 1×" in html
    assert "http://airflow.test:8080/vyapar-health/" in html and "Weekly pipeline report" in plain

    [message] = harness.slack.messages
    assert "Weekly pipeline report: 175 runs, success 97.1%, 6 incidents, least fresh source orders 97.0%" in message.text
    assert "http://airflow.test:8080/vyapar-health/" in str(message.blocks)
    assert "not_null_stg_orders_order_id" not in message.text  # one line: the figures are in the email


TASK_PROCESS_SUMMARY = """
import json, sys
from datetime import datetime
from airflow.sdk.execution_time.supervisor import block_orm_access
block_orm_access()  # what the supervisor does to every task process
from include.vyapar.alerting.producers import weekly
summary = weekly.summarize(datetime.fromisoformat(sys.argv[1]))
print(json.dumps({"per_dag": summary["per_dag"], "sources_p95": summary["layers"]["sources"]["this"]["p95"]}))
"""


def test_the_weekly_task_reads_the_metadata_database_where_airflow_blocks_the_orm(
    harness, metadata_history, landing_ledger, monkeypatch  # noqa: F811
):
    env = {**os.environ, "VYAPAR_LANDING_DIR": str(settings.LANDING_DIR)}
    env.pop("VYAPAR_METADATA_DB_URL", None)  # Airflow's default SQLite file in AIRFLOW_HOME, as under bin/start
    proc = subprocess.run([sys.executable, "-c", TASK_PROCESS_SUMMARY, NOW.isoformat()], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["per_dag"]["vyapar_sources"] == {"runs": 168, "succeeded": 164, "rate": 164 / 168}
    assert figures["sources_p95"] == 100
