"""The health view's figures and page without a platform: a fresh alert store, the project's manifest and landing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from include.vyapar.alerting.alert import Alert
from include.vyapar.alerting.store import AlertStore
from include.vyapar.health import render, snapshot

MODEL = "model.vyaparbazaar.stg_orders"


@pytest.fixture
def store(tmp_path):
    store = AlertStore(f"sqlite:///{tmp_path / 'alerts.sqlite'}")
    yield store
    store.engine.dispose()


def test_baselines_in_one_query_match_baseline_for(store):
    for node, durations in {"a": [1, 2, 3, 4, 50] + [5] * 10, "b": [1.0, 2.0], "c": [3.0, 1.0, 2.0]}.items():
        for i, seconds in enumerate(durations):
            store.record_duration(node, seconds, f"run{i}")
    baselines = store.baselines()
    assert set(baselines) == {"a", "c"}  # b has fewer than min_samples
    for node in ("a", "c"):
        assert baselines[node] == store.baseline_for(node)


def test_alerts_since_carries_deliveries_incident_and_payload(store):
    now = datetime.now(UTC)
    old = store.enqueue(Alert(kind="failed_run", subject="old", dag_id="d", task_id="t0"), now=now - timedelta(days=9))
    result = store.enqueue(Alert(kind="failed_run", subject="fresh", dag_id="d", run_id="r1", task_id="t1"), now=now)
    rows = store.alerts_since((now - timedelta(days=7)).timestamp())
    assert [r["id"] for r in rows] == [result.alert_id] and old.alert_id not in [r["id"] for r in rows]
    row = rows[0]
    assert row["incident_status"] == "open" and row["alert"].run_id == "r1"
    assert sorted(d["channel"] for d in row["deliveries"]) == ["email", "slack"]
    assert store.count_alerts_since(0) == 2


def test_outbox_summary_counts_backlog_and_the_last_error(store):
    store.enqueue(Alert(kind="failed_run", subject="x", dag_id="d", task_id="t"))
    summary = store.outbox_summary()
    assert summary["backlog"] == 2 and summary["dead"] == 0 and summary["last_error"] is None
    (claimed, *_rest) = store.claim_due(now=datetime.now(UTC).timestamp() + 1, limit=1, lease_seconds=60)
    store.reschedule(claimed, datetime.now(UTC).timestamp() + 60, "SMTP connection is not found.")
    summary = store.outbox_summary()
    assert summary["backlog"] == 2 and summary["last_error"]["last_error"] == "SMTP connection is not found."


def test_snapshot_and_page_show_every_panel(store):
    now = datetime.now(UTC)
    for i, seconds in enumerate([2.0, 2.1, 1.9, 2.0, 4.5]):
        at = (now - timedelta(hours=5 - i)).timestamp()
        store.record_node_result(
            MODEL, "model", "success", seconds, dag_id="vyapar_staging", run_id=f"r{i}", finished_at=at
        )
        if i < 4:
            store.record_duration(MODEL, seconds, f"r{i}")
    store.enqueue(Alert(kind="slow", subject="stg_orders is slow", dag_id="vyapar_staging", run_id="r4", node_id=MODEL))

    snap = snapshot.collect(store=store, now=now, with_runs=False)
    assert not snap.errors, snap.errors
    model = next(m for m in snap.models if m.node_id == MODEL)
    assert snap.models[0] is model  # the slowest against its baseline comes first
    assert model.baseline_seconds == 2.0 and model.ratio == pytest.approx(2.25) and model.colour == snapshot.RED
    assert snap.alerts[0].run_url == "../dags/vyapar_staging/runs/r4"
    assert snap.outbox.backlog == 1  # a low alert goes to Slack only

    html = render.page(snap)
    for panel in ("freshness", "outbox", "alerts", "durations", "runs"):
        assert f'id="{panel}"' in html
    card = re.search(r'<div class="model" data-model="stg_orders".*?</svg></div>', html).group(0)
    assert card.count("<rect") == 5 and 'class="threshold"' in card and "4.5 s" in card
    assert "<script src" not in html and "http://" not in html and "https://" not in html  # nothing from elsewhere
    assert snap.to_dict()["models"][0]["ratio"] == pytest.approx(2.25)


@pytest.mark.parametrize(
    ("kind", "age_h", "expected_h", "last_before_expected", "colour"),
    [
        ("source", 0.2, None, False, "green"),
        ("source", 1.2, None, False, "amber"),
        ("source", 2.5, None, False, "red"),
        ("mart", 20, 1.0, True, "amber"),  # the scheduled build is due, within the limit
        ("mart", 20, 3.0, True, "red"),  # past the limit: stale
        ("mart", 2, 3.0, False, "green"),
    ],
)
def test_freshness_colours(kind, age_h, expected_h, last_before_expected, colour):
    from include.vyapar.alerting.producers.freshness import Freshness

    now = datetime.now(UTC)
    last = now - timedelta(hours=age_h)
    expected = None if expected_h is None else now - timedelta(hours=expected_h)
    if expected is not None and not last_before_expected:
        last = expected + timedelta(minutes=5)
    f = Freshness("x", "x", kind, last, expected, timedelta(hours=2), now)
    assert snapshot.freshness_colour(f)[0] == colour
