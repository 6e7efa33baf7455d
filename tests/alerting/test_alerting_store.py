"""The store's own guarantees: it runs on PostgreSQL too, and the duration baselines behave."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from include.vyapar.alerting import Alert
from include.vyapar.alerting.config import load_alerting_config
from include.vyapar.alerting.delivery import flush
from include.vyapar.alerting.store import AlertStore
from tests.alerting.conftest import failed_run

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def postgres_store(harness):
    try:
        sa.create_engine(POSTGRES_URL).connect().close()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no local PostgreSQL: {exc}")
    store = AlertStore(POSTGRES_URL, config=harness.store.config, table_prefix=f"t{uuid.uuid4().hex[:10]}_")
    yield store
    store.drop_all()


def test_store_works_on_postgres(postgres_store, harness):
    store = postgres_store
    opened = store.enqueue(failed_run())
    assert opened.status == "open" and store.enqueue(failed_run()).status == "repeat"
    assert store.enqueue(failed_run(dedup_key="down"), upstream_keys=[failed_run().dedup_key]).status == "folded"
    assert flush(store=store).sent == 2
    assert (
        store.enqueue(Alert(kind="recovered", subject="ok again", recovery_of=failed_run().dedup_key)).status
        == "recovery"
    )
    other = AlertStore(POSTGRES_URL, config=store.config, table_prefix=store.alerts.name.removesuffix("alerts"))
    assert flush(store=other).sent == 2
    root, reply = harness.slack.messages
    assert reply.thread_ts == root.ts
    assert store.incident(failed_run().dedup_key)["affected"] == ["model.vyaparbazaar.fct_daily_gmv"]
    for seconds, run in [(10, "r1"), (30, "r2"), (20, "r3")]:
        store.record_duration("model.vyaparbazaar.fct_orders", seconds, run)
    assert store.baseline_for("model.vyaparbazaar.fct_orders").median == 20
    assert store.mark_slow_alerted("r3", "model.x") and not store.mark_slow_alerted("r3", "model.x")
    other.engine.dispose()


def test_baseline_is_median_of_last_n_and_needs_min_samples(tmp_path):
    config = load_alerting_config()
    assert (config.alerts.slow.baseline_samples, config.alerts.slow.min_samples) == (10, 3)
    store = AlertStore(f"sqlite:///{tmp_path / 'alerts.sqlite'}", config=config)
    node = "model.vyaparbazaar.fct_orders"
    store.record_duration(node, 100, "run_1")
    store.record_duration(node, 200, "run_2")
    assert store.baseline_for(node) is None  # 2 < min_samples
    store.record_duration(node, 600, "run_3")
    assert store.baseline_for(node).median == 200 and store.baseline_for(node).samples == 3
    store.record_duration(node, 300, "run_3")  # a retried run replaces its own sample
    assert store.baseline_for(node).median == 200
    for n in range(4, 16):  # 12 more runs of 10 s: only the last 10 count
        store.record_duration(node, 10, f"run_{n}")
    baseline = store.baseline_for(node)
    assert (baseline.median, baseline.samples) == (10, 10)
    assert store.baseline_for("model.vyaparbazaar.never_ran") is None
    assert store.mark_slow_alerted("run_15", node) is True
    assert store.mark_slow_alerted("run_15", node) is False


def test_store_refuses_the_duckdb_warehouse():
    from include.vyapar import settings

    with pytest.raises(ValueError, match="never live in the DuckDB warehouse"):
        AlertStore(f"sqlite:///{settings.DUCKDB_PATH}")


def test_crash_recovery_and_an_older_schema_on_postgres(postgres_store, harness, monkeypatch):
    """On PostgreSQL too: a store made before `unconfirmed_since` gains it, and a crashed send whose first lookup
    fails (429) is looked up again, not re-posted."""
    import time

    from tests.alerting.test_alerting_crash_recovery import Crash, _die

    store = postgres_store
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE {store.deliveries.name} DROP COLUMN unconfirmed_since")
    prefix = store.alerts.name.removesuffix("alerts")
    store = AlertStore(POSTGRES_URL, config=store.config, table_prefix=prefix)
    assert "unconfirmed_since" in {c["name"] for c in sa.inspect(store.engine).get_columns(store.deliveries.name)}

    store.enqueue(Alert(kind="data_quality", subject="orders has null customer ids", dag_id="vyapar_facts"))
    with monkeypatch.context() as patched, pytest.raises(Crash):
        patched.setattr(AlertStore, "mark_sent", _die)
        flush(store=store)
    harness.slack.fail_next(1, "429", methods=("conversations.history",))
    later = time.time() + 10
    assert flush(store=store, now=later).retried == 1
    assert flush(store=store, now=later + 30).already_sent == 1
    assert len(harness.slack.messages) == 1
    store.engine.dispose()


def test_a_forked_child_never_uses_its_parents_pooled_connections(postgres_store):
    """The executor forks task processes from the scheduler, whose sweeper has the store open. A child that took
    its parent's pooled connection shared one socket with it: a query then waited forever (seen in the real
    containers: the restarted scheduler hung in the listener's has_open_incident)."""
    import os

    store = postgres_store
    store.enqueue(failed_run())
    assert store.engine.pool.checkedin() >= 1  # the parent's connection, idle in its pool
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its pool starts empty, and it queries on a connection of its own
        try:
            inherited = store.engine.pool.checkedin()
            ok = all(store.has_open_incident(failed_run().dedup_key) for _ in range(20))
            os.write(write, f"{inherited} {ok}".encode())
        finally:
            os._exit(0)
    os.close(write)
    for _ in range(20):  # the parent goes on using its own connection meanwhile
        assert store.has_open_incident(failed_run().dedup_key)
    os.waitpid(pid, 0)
    answer = os.read(read, 100).decode()
    os.close(read)
    assert answer == "0 True", answer
    assert store.has_open_incident(failed_run().dedup_key)  # the parent's connection still works
